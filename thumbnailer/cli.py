"""`python manage.py thumbnail PATH... [--size 128x128]... [--out DIR]`: the pipeline, no broker, no Django.

Runs exactly what the worker runs (imaging.make_renditions, then imaging.package_renditions) on
local files, so an operator can check an image that failed on the site, or thumbnail a folder by hand.

manage.py calls main(), which imports no Django: the limits come from thumbnailer.limits, and the
command line looks and behaves as a Django management command's would (same options, help, error
lines and exit statuses). The management command in management/commands/thumbnail.py wraps
add_arguments() and thumbnail_paths() for call_command(), with the limits from Django's settings.
"""

import argparse
import functools
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from thumbnailer import imaging, naming
from thumbnailer.limits import Limits

DESCRIPTION = (
    "Make thumbnails and a zip (original, thumbnails, manifest.json) for each image file, "
    "with the same pipeline as the worker. Prints one line per file; exits with status 1 "
    "if any file failed."
)


class CommandFailed(Exception):
    """The run stops with this one-line message and exit status (1: bad option or a file failed)."""

    def __init__(self, message: str, *, returncode: int = 1):
        super().__init__(message)
        self.returncode = returncode


def add_arguments(parser: argparse.ArgumentParser, *, default_sizes: str) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files to thumbnail")
    parser.add_argument(
        "--size",
        action="append",
        dest="sizes",
        metavar="WxH",
        help="box to fit each thumbnail in, e.g. 128x128; repeat or comma-separate for "
        f"several (default: {default_sizes})",
    )
    parser.add_argument(
        "--mode",
        choices=imaging.MODES,
        default="fit",
        help="fit: inside the box (default); fill: exactly the box, cropped around --focus; "
        "smart: exactly the box, cropped on the most detailed part",
    )
    parser.add_argument(
        "--focus", metavar="X,Y", default="", help="for fill: the point to keep in view, e.g. 0.5,0.3"
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=imaging.FORMATS,
        default="auto",
        help="output format (default: auto)",
    )
    parser.add_argument("--quality", type=int, metavar="1-100", help="for JPEG, WebP and AVIF")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the outputs, created if missing (default: next to each input)",
    )


def thumbnail_paths(
    options: Mapping[str, Any],
    *,
    limits: Limits,
    write_line: Callable[[str], None],
    write_failure: Callable[[str], None],
) -> None:
    """Thumbnail each of options["paths"] (as add_arguments() parsed them), one line per file.

    Raises CommandFailed for a bad option, before any work, or when any file failed.
    """
    paths = options["paths"]
    try:
        thumbnail_options = imaging.ThumbnailOptions.from_text(
            mode=options["mode"],
            focus=options["focus"],
            output_format=options["output_format"],
            quality="" if options["quality"] is None else str(options["quality"]),
        )
    except ValueError as error:
        raise CommandFailed(f"--{str(error).split(' ', 1)[0]}: {error}") from error
    try:
        boxes = naming.parse_boxes(
            ",".join(options["sizes"] or [limits.default_sizes]), largest=limits.largest_side
        )
    except ValueError as error:
        raise CommandFailed(f"--size: {error}") from error
    out_dir = Path(options["out"]) if options["out"] else None
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandFailed(f"--out: cannot create {out_dir}: {error.strerror}.") from error

    used_stems: set[tuple[Path, str]] = set()
    failures = 0
    for path in map(Path, paths):
        target_dir = out_dir or path.parent
        stem = _unused_stem(naming.safe_stem(path.name), target_dir, used_stems)
        started = time.perf_counter()
        try:
            written = thumbnail_file(
                path, boxes=boxes, stem=stem, out_dir=target_dir, limits=limits, options=thumbnail_options
            )
        except imaging.ImageRejected as rejected:
            failures += 1
            write_failure(f"{path}: FAILED ({rejected.code}) {rejected.message}")
            continue
        except OSError as error:
            failures += 1
            write_failure(
                f"{path}: FAILED (cannot_read_or_write) {error.strerror or error}: {error.filename or path}."
            )
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        write_line(f"{path}: {' '.join(written)} ({elapsed_ms:.0f} ms)")

    if failures:
        raise CommandFailed(f"{failures} of {len(paths)} files failed.")


def thumbnail_file(
    path: Path,
    *,
    boxes: list[tuple[int, int]],
    stem: str,
    out_dir: Path,
    limits: Limits,
    options: imaging.ThumbnailOptions = imaging.DEFAULT_OPTIONS,
) -> list[str]:
    """Write `<stem>_<W>x<H>.<ext>` per box and `<stem>.zip` into out_dir; return their names."""
    # Read once: the bytes are decoded from memory and stored in the zip as they are.
    original_data = path.read_bytes()
    rendered = imaging.make_renditions(
        io.BytesIO(original_data),
        boxes=boxes,
        max_pixels=limits.max_pixels,
        max_frames=limits.max_frames,
        options=options,
    )
    package = imaging.package_renditions(
        original_data,
        rendered,
        original_name=naming.safe_upload_name(path.name, extension=rendered.original.extension),
        thumbnail_name=functools.partial(naming.thumbnail_name, stem),
    )
    for thumbnail in package.thumbnails:
        _write_atomically(out_dir / thumbnail.name, lambda file, data=thumbnail.data: file.write(data))
    archive = naming.archive_name(stem)
    _write_atomically(out_dir / archive, package.write_archive)
    return [*(thumbnail.name for thumbnail in package.thumbnails), archive]


def _unused_stem(stem: str, out_dir: Path, used: set[tuple[Path, str]]) -> str:
    """Two inputs called photo.jpg in one run must not overwrite each other: photo, photo_2..."""
    candidate, number = stem, 1
    while (out_dir.resolve(), candidate) in used:
        number += 1
        candidate = f"{stem}_{number}"
    used.add((out_dir.resolve(), candidate))
    return candidate


def _write_atomically(path: Path, write) -> None:
    """Write to a temporary file next to path, then rename: never a half-written output."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- The process entry point: a Django management command's command line, without Django --------


def main(argv: list[str]) -> int:
    """Run `<argv[0]> <argv[1]> OPTIONS...` (as sys.argv has them); return the exit status."""
    # A limit variable that is not a number stops here with a traceback, as Django's settings did.
    limits = Limits.from_environment()
    parser = build_parser(f"{os.path.basename(argv[0])} {argv[1]}", default_sizes=limits.default_sizes)
    options = parser.parse_args(argv[2:])  # argparse prints usage and exits 2 on a bad option, as Django's
    write_failure = _stderr_writer(no_color=options.no_color)
    try:
        if options.force_color and options.no_color:
            raise CommandFailed("The --no-color and --force-color options can't be used together.")
        thumbnail_paths(vars(options), limits=limits, write_line=_write_stdout, write_failure=write_failure)
    except CommandFailed as error:
        if options.traceback:
            raise
        # The line Django prints for a CommandError: scripts that read it see no difference.
        write_failure(f"CommandError: {error}")
        return error.returncode
    return 0


def build_parser(prog: str, *, default_sizes: str) -> argparse.ArgumentParser:
    """The options every Django command has, with Django's help texts, then the command's own.

    In that order, with Django's help formatter, so that --help, usage errors and the choices an
    ambiguous abbreviation lists read as before. test_cli compares them with Django's parser.
    """
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, formatter_class=_DjangoHelpFormatter)
    parser.add_argument(
        "--version", action=_DjangoVersionAction, help="Show program's version number and exit."
    )
    parser.add_argument(
        "-v",
        "--verbosity",
        default=1,
        type=int,
        choices=[0, 1, 2, 3],
        help="Verbosity level; 0=minimal output, 1=normal output, 2=verbose output, 3=very verbose output",
    )
    parser.add_argument(
        "--settings",
        help='The Python path to a settings module, e.g. "myproject.settings.main". If this isn\'t '
        "provided, the DJANGO_SETTINGS_MODULE environment variable will be used.",
    )
    parser.add_argument(
        "--pythonpath",
        help='A directory to add to the Python path, e.g. "/home/djangoprojects/myproject".',
    )
    parser.add_argument(
        "--traceback", action="store_true", help="Display a full stack trace on CommandError exceptions."
    )
    parser.add_argument("--no-color", action="store_true", help="Don't colorize the command output.")
    parser.add_argument(
        "--force-color", action="store_true", help="Force colorization of the command output."
    )
    add_arguments(parser, default_sizes=default_sizes)
    return parser


class _DjangoHelpFormatter(argparse.HelpFormatter):
    """As Django's DjangoHelpFormatter: the command's own options first, the common ones after."""

    _SHOWN_LAST = {
        "--version",
        "--verbosity",
        "--settings",
        "--pythonpath",
        "--traceback",
        "--no-color",
        "--force-color",
    }

    def _reordered_actions(self, actions):
        return sorted(actions, key=lambda action: bool(self._SHOWN_LAST.intersection(action.option_strings)))

    def add_usage(self, usage, actions, *args, **kwargs):
        super().add_usage(usage, self._reordered_actions(actions), *args, **kwargs)

    def add_arguments(self, actions):
        super().add_arguments(self._reordered_actions(actions))


class _DjangoVersionAction(argparse.Action):
    """--version prints Django's version, as every management command does; Django loads only then."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import django

        sys.stdout.write(f"{django.get_version()}\n")
        parser.exit()


def _write_stdout(line: str) -> None:
    sys.stdout.write(f"{line}\n")


def _stderr_writer(*, no_color: bool) -> Callable[[str], None]:
    """Error lines in red and bold when stdout and stderr are terminals, as Django's default palette.

    --force-color changes nothing here, as in Django (it restyles stdout, where nothing is styled).
    manage.py sends runs with a DJANGO_COLORS palette to Django, which parses it.
    """
    colour = not no_color and sys.platform != "win32" and sys.stdout.isatty() and sys.stderr.isatty()
    if colour:
        return lambda line: sys.stderr.write(f"\x1b[31;1m{line}\n\x1b[0m")
    return lambda line: sys.stderr.write(f"{line}\n")
