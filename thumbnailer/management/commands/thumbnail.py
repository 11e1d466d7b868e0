"""`python manage.py thumbnail PATH... [--size 128x128]... [--out DIR]`: the pipeline, no broker.

Runs exactly what the worker runs (imaging.make_renditions, then imaging.package_renditions) on
local files, so an operator can check an image that failed on the site, or thumbnail a folder by hand.
"""

import functools
import io
import os
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from thumbnailer import imaging, naming


class Command(BaseCommand):
    help = (
        "Make thumbnails and a zip (original, thumbnails, manifest.json) for each image file, "
        "with the same pipeline as the worker. Prints one line per file; exits with status 1 "
        "if any file failed."
    )
    # The system checks import the URLconf, views, admin and Celery to check the web site,
    # which this command never uses; skipping them halves its start-up.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="image files to thumbnail")
        parser.add_argument(
            "--size",
            action="append",
            dest="sizes",
            metavar="WxH",
            help="box to fit each thumbnail in, e.g. 128x128; repeat or comma-separate for "
            f"several (default: {settings.THUMBNAILER_DEFAULT_SIZES})",
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

    def handle(self, *args, paths, sizes, out, mode, focus, output_format, quality, **options):
        try:
            thumbnail_options = imaging.ThumbnailOptions.from_text(
                mode=mode,
                focus=focus,
                output_format=output_format,
                quality="" if quality is None else str(quality),
            )
        except ValueError as error:
            raise CommandError(f"--{str(error).split(' ', 1)[0]}: {error}") from error
        try:
            boxes = naming.parse_boxes(
                ",".join(sizes or [settings.THUMBNAILER_DEFAULT_SIZES]),
                largest=settings.THUMBNAILER_LARGEST_SIDE,
            )
        except ValueError as error:
            raise CommandError(f"--size: {error}") from error
        out_dir = Path(out) if out else None
        if out_dir is not None:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise CommandError(f"--out: cannot create {out_dir}: {error.strerror}.") from error

        used_stems: set[tuple[Path, str]] = set()
        failures = 0
        for path in map(Path, paths):
            target_dir = out_dir or path.parent
            stem = _unused_stem(naming.safe_stem(path.name), target_dir, used_stems)
            started = time.perf_counter()
            try:
                written = thumbnail_file(
                    path, boxes=boxes, stem=stem, out_dir=target_dir, options=thumbnail_options
                )
            except imaging.ImageRejected as rejected:
                failures += 1
                self.stderr.write(f"{path}: FAILED ({rejected.code}) {rejected.message}")
                continue
            except OSError as error:
                failures += 1
                self.stderr.write(
                    f"{path}: FAILED (cannot_read_or_write) {error.strerror or error}: "
                    f"{error.filename or path}."
                )
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.stdout.write(f"{path}: {' '.join(written)} ({elapsed_ms:.0f} ms)")

        if failures:
            raise CommandError(f"{failures} of {len(paths)} files failed.", returncode=1)


def thumbnail_file(
    path: Path,
    *,
    boxes: list[tuple[int, int]],
    stem: str,
    out_dir: Path,
    options: imaging.ThumbnailOptions = imaging.DEFAULT_OPTIONS,
) -> list[str]:
    """Write `<stem>_<W>x<H>.<ext>` per box and `<stem>.zip` into out_dir; return their names."""
    # Read once: the bytes are decoded from memory and stored in the zip as they are.
    original_data = path.read_bytes()
    rendered = imaging.make_renditions(
        io.BytesIO(original_data),
        boxes=boxes,
        max_pixels=settings.THUMBNAILER_MAX_PIXELS,
        max_frames=settings.THUMBNAILER_MAX_FRAMES,
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
