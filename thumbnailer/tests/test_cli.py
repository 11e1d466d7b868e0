"""`manage.py thumbnail`: the worker's pipeline on local files, one line per file, status 1 on failure.

Behaviour tests run through both entry points: thumbnailer.cli.main() (what manage.py runs, no
Django) and call_command() (the management command wrapping it). Real processes check the exit
status, the modules imported on each path and that a custom settings module is honoured.
"""

import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import django
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from thumbnailer import cli
from thumbnailer.limits import Limits
from thumbnailer.management.commands.thumbnail import Command

REPO = Path(__file__).resolve().parents[2]


def write_jpeg(path: Path, size=(400, 300), colour=(200, 30, 30)) -> Path:
    Image.new("RGB", size, colour).save(path, "JPEG")
    return path


@dataclass
class Outcome:
    stdout: str
    stderr: str  # the lines about single files
    error: str | None  # the line the run stopped with, without Django's "CommandError: " prefix
    returncode: int


def run_call_command(*args) -> Outcome:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("thumbnail", *map(str, args), stdout=stdout, stderr=stderr)
    except CommandError as error:
        return Outcome(stdout.getvalue(), stderr.getvalue(), str(error), error.returncode)
    return Outcome(stdout.getvalue(), stderr.getvalue(), None, 0)


def run_cli_main(capsys, *args) -> Outcome:
    capsys.readouterr()
    returncode = cli.main(["manage.py", "thumbnail", *map(str, args)])
    captured = capsys.readouterr()
    *file_lines, last = captured.err.splitlines(keepends=True) or [""]
    if returncode == 0:
        return Outcome(captured.out, captured.err, None, 0)
    assert last.startswith("CommandError: ") and last.endswith("\n"), captured.err
    return Outcome(captured.out, "".join(file_lines), last.removeprefix("CommandError: ")[:-1], returncode)


@pytest.fixture(params=["cli.main", "call_command"])
def run(request, capsys):
    """Run the command through one entry point; both must behave the same."""
    if request.param == "cli.main":
        return lambda *args: run_cli_main(capsys, *args)
    return run_call_command


def test_writes_one_thumbnail_per_size_and_a_zip(run, tmp_path):
    source = write_jpeg(tmp_path / "My Photo.jpeg")
    out = tmp_path / "out"

    outcome = run(source, "--size", "128x128", "--size", "64x64,256x256", "--out", out)

    assert (outcome.error, outcome.stderr, outcome.returncode) == (None, "", 0)
    (line,) = outcome.stdout.splitlines()
    assert line.startswith(
        f"{source}: My_Photo_128x128.jpg My_Photo_64x64.jpg My_Photo_256x256.jpg My_Photo.zip ("
    )
    assert line.endswith(" ms)")
    assert sorted(path.name for path in out.iterdir()) == [
        "My_Photo.zip",
        "My_Photo_128x128.jpg",
        "My_Photo_256x256.jpg",
        "My_Photo_64x64.jpg",
    ]
    assert Image.open(out / "My_Photo_128x128.jpg").size == (128, 96)
    assert Image.open(out / "My_Photo_64x64.jpg").size == (64, 48)
    assert Image.open(out / "My_Photo_256x256.jpg").size == (256, 192)
    with zipfile.ZipFile(out / "My_Photo.zip") as archive:
        assert archive.namelist() == [
            "My_Photo.jpg",
            "My_Photo_128x128.jpg",
            "My_Photo_64x64.jpg",
            "My_Photo_256x256.jpg",
            "manifest.json",
        ]
        assert archive.read("My_Photo.jpg") == source.read_bytes()
        assert archive.read("My_Photo_64x64.jpg") == (out / "My_Photo_64x64.jpg").read_bytes()
        manifest = json.loads(archive.read("manifest.json"))
    assert [(f["name"], f["width"], f["height"], f["format"]) for f in manifest["files"]] == [
        ("My_Photo.jpg", 400, 300, "JPEG"),
        ("My_Photo_128x128.jpg", 128, 96, "JPEG"),
        ("My_Photo_64x64.jpg", 64, 48, "JPEG"),
        ("My_Photo_256x256.jpg", 256, 192, "JPEG"),
    ]


def write_half_transparent_png(path: Path) -> Path:
    Image.new("RGBA", (50, 200), (0, 0, 255, 128)).save(path)
    return path


def assert_one_100x100_thumbnail_next_to(source: Path, outcome: Outcome) -> None:
    assert (outcome.error, outcome.stderr) == (None, "")
    assert outcome.stdout.startswith(f"{source}: art_100x100.png art.zip (")
    thumbnail = Image.open(source.parent / "art_100x100.png")
    assert thumbnail.size == (25, 100) and thumbnail.getpixel((10, 50)) == (0, 0, 255, 128)


def test_default_size_from_settings_and_output_next_to_the_input(tmp_path, settings):
    """The management command reads the limits from Django's settings (so tests can override them)."""
    settings.THUMBNAILER_DEFAULT_SIZES = "100x100"
    source = write_half_transparent_png(tmp_path / "art.png")

    assert_one_100x100_thumbnail_next_to(source, run_call_command(source))


def test_default_size_from_the_environment_and_output_next_to_the_input(tmp_path, monkeypatch, capsys):
    """cli.main() reads them from the variables settings.py reads."""
    monkeypatch.setenv("THUMBNAILER_DEFAULT_SIZES", "100x100")
    source = write_half_transparent_png(tmp_path / "art.png")

    assert_one_100x100_thumbnail_next_to(source, run_cli_main(capsys, source))


def test_the_limits_are_the_settings_without_django(monkeypatch, settings):
    """cli.main() reads the same variables, with the same defaults, as settings.py."""
    from_settings = Limits(
        max_pixels=settings.THUMBNAILER_MAX_PIXELS,
        max_frames=settings.THUMBNAILER_MAX_FRAMES,
        default_sizes=settings.THUMBNAILER_DEFAULT_SIZES,
        largest_side=settings.THUMBNAILER_LARGEST_SIDE,
    )
    assert Limits.from_environment() == from_settings
    for name, value in [
        ("THUMBNAILER_MAX_PIXELS", "1000"),
        ("THUMBNAILER_MAX_FRAMES", "7"),
        ("THUMBNAILER_DEFAULT_SIZES", "32x32,64x64"),
        ("THUMBNAILER_LARGEST_SIDE", "640"),
    ]:
        monkeypatch.setenv(name, value)
    assert Limits.from_environment() == Limits(
        max_pixels=1000, max_frames=7, default_sizes="32x32,64x64", largest_side=640
    )
    monkeypatch.setenv("THUMBNAILER_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="^THUMBNAILER_MAX_PIXELS must be a whole number, not 'lots'$"):
        Limits.from_environment()


def test_the_pixel_limit_from_the_environment_applies_without_django(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("THUMBNAILER_MAX_PIXELS", "1000")
    source = write_jpeg(tmp_path / "photo.jpg")

    outcome = run_cli_main(capsys, source)

    assert outcome.stderr == (
        f"{source}: FAILED (too_many_pixels) The image is 400x300 pixels (0 MP); the limit is 0.001 MP.\n"
    )
    assert (outcome.error, outcome.returncode) == ("1 of 1 files failed.", 1)


def test_two_inputs_with_the_same_name_do_not_overwrite_each_other(run, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_jpeg(tmp_path / "a" / "photo.jpg", colour=(255, 0, 0))
    second = write_jpeg(tmp_path / "b" / "photo.jpg", colour=(0, 0, 255))

    outcome = run(first, second, "--out", tmp_path / "out")

    assert outcome.error is None
    assert [line.split(" (")[0] for line in outcome.stdout.splitlines()] == [
        f"{first}: photo_128x128.jpg photo.zip",
        f"{second}: photo_2_128x128.jpg photo_2.zip",
    ]
    assert Image.open(tmp_path / "out" / "photo_128x128.jpg").getpixel((5, 5))[0] > 200
    assert Image.open(tmp_path / "out" / "photo_2_128x128.jpg").getpixel((5, 5))[2] > 200


def test_each_failure_gets_a_clear_line_and_the_status_is_1(run, tmp_path):
    good = write_jpeg(tmp_path / "good.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(write_jpeg(tmp_path / "whole.jpg").read_bytes()[:400])
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"

    outcome = run(text, good, truncated, missing, "--out", out)

    assert outcome.stdout.startswith(f"{good}: good_128x128.jpg good.zip (")
    assert outcome.stderr.splitlines() == [
        f"{text}: FAILED (not_an_image) The file is not an image we can read. "
        "Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image.",
        f"{truncated}: FAILED (corrupt_image) The image is damaged or truncated and could not be read.",
        f"{missing}: FAILED (cannot_read_or_write) No such file or directory: {missing}.",
    ]
    assert (outcome.error, outcome.returncode) == ("3 of 4 files failed.", 1)
    assert sorted(path.name for path in out.iterdir()) == ["good.zip", "good_128x128.jpg"]


@pytest.mark.parametrize("size", ["128", "0x10", "abc", "99999x1"])
def test_a_bad_size_is_refused_before_any_work(run, tmp_path, size):
    source = write_jpeg(tmp_path / "photo.jpg")
    outcome = run(source, "--size", size)
    assert outcome.error.startswith("--size: ") and outcome.returncode == 1
    assert outcome.stdout == "" and sorted(path.name for path in tmp_path.iterdir()) == ["photo.jpg"]


def test_exit_status_from_a_real_process(tmp_path):
    """The shell sees status 0 when all files worked and 1 when one failed."""
    good = write_jpeg(tmp_path / "good.jpg")
    bad = tmp_path / "bad.gif"
    bad.write_bytes(b"GIF89a broken")
    command = [sys.executable, str(REPO / "manage.py"), "thumbnail", "--out", str(tmp_path / "out")]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}

    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, env=environment, timeout=60)
    failed = subprocess.run(
        [*command, str(good), str(bad)], capture_output=True, text=True, env=environment, timeout=60
    )

    assert ok.returncode == 0, ok.stderr
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"{bad}: FAILED (not_an_image) The file is not an image we can read. "
        "Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image.",
        "CommandError: 1 of 2 files failed.",
    ]


# Run manage.py as the shell does, then list the modules the process imported, at exit.
_LIST_MODULES_AT_EXIT = """
import atexit, json, os, runpy, sys
atexit.register(lambda: open(os.environ["MODULES_FILE"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_cli_process(tmp_path: Path, *args, **environment) -> tuple[subprocess.CompletedProcess, set[str]]:
    modules_file = tmp_path / "modules.json"
    completed = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES_AT_EXIT, str(REPO / "manage.py"), "thumbnail", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "MODULES_FILE": str(modules_file), **environment},
        timeout=60,
    )
    return completed, set(json.loads(modules_file.read_text()))


def _imported(modules: set[str], packages: list[str]) -> list[str]:
    return sorted(p for p in packages if any(m == p or m.startswith(p + ".") for m in modules))


@pytest.fixture(scope="module")
def modules_of_a_jpeg_run(tmp_path_factory) -> set[str]:
    folder = tmp_path_factory.mktemp("jpeg_run")
    completed, modules = run_cli_process(folder, write_jpeg(folder / "photo.jpg"), "--out", folder / "out")
    assert completed.returncode == 0, completed.stderr
    assert sorted(path.name for path in (folder / "out").iterdir()) == ["photo.zip", "photo_128x128.jpg"]
    return modules


def test_the_cli_starts_without_what_it_does_not_use(modules_of_a_jpeg_run):
    """On JPEGs: no Celery app, no HEIF or PNG decoder, no admin, models or URLs (no django.setup())."""
    unused = [
        "thumbnailer_project.celery",
        "pillow_heif",
        "isal",
        "django.contrib.admin",
        "django.contrib.auth",
        "thumbnailer.models",
        "thumbnailer.tasks",
        "thumbnailer.views",
        "django.urls",
    ]
    assert _imported(modules_of_a_jpeg_run, unused) == []


def test_the_cli_imports_no_celery(modules_of_a_jpeg_run):
    assert _imported(modules_of_a_jpeg_run, ["celery", "kombu", "billiard"]) == []


def test_the_cli_imports_no_django(modules_of_a_jpeg_run):
    """With our settings module, the limits come from the environment: no Django, no settings."""
    assert _imported(modules_of_a_jpeg_run, ["django", "thumbnailer_project"]) == []


# Our settings with other limits: only Django can read them, so manage.py must take its path.
_CUSTOM_SETTINGS = """
from thumbnailer_project.settings import *

THUMBNAILER_DEFAULT_SIZES = "64x64"
"""


@pytest.mark.parametrize("how", ["--settings", "DJANGO_SETTINGS_MODULE"])
def test_a_custom_settings_module_is_honoured(tmp_path, how):
    """Its limits apply (through the management command, still without Celery)."""
    (tmp_path / "custom_settings.py").write_text(_CUSTOM_SETTINGS)
    source = write_jpeg(tmp_path / "photo.jpg")
    if how == "--settings":
        arguments, environment = ["--settings", "custom_settings"], {}
    else:
        arguments, environment = [], {"DJANGO_SETTINGS_MODULE": "custom_settings"}

    completed, modules = run_cli_process(
        tmp_path, source, "--out", tmp_path / "out", "--pythonpath", tmp_path, *arguments, **environment
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"{source}: photo_64x64.jpg photo.zip (")
    assert "custom_settings" in modules and "django.conf" in modules
    assert _imported(modules, ["celery", "thumbnailer_project.celery"]) == []


def test_a_heic_file_still_works_from_a_real_process(tmp_path):
    """HEIF support loads when the first HEIC file comes; the thumbnail is a JPEG."""
    import pillow_heif

    pillow_heif.register_heif_opener()  # to write the fixture; the CLI process registers its own
    source = tmp_path / "IMG_0001.HEIC"
    Image.new("RGB", (400, 300), (30, 160, 60)).save(source, "HEIF", quality=90)

    completed, modules = run_cli_process(tmp_path, source, "--out", tmp_path / "out")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"{source}: IMG_0001_128x128.jpg IMG_0001.zip (")
    assert "pillow_heif" in modules
    with zipfile.ZipFile(tmp_path / "out" / "IMG_0001.zip") as archive:
        assert archive.namelist() == ["IMG_0001.heic", "IMG_0001_128x128.jpg", "manifest.json"]
    thumbnail = Image.open(tmp_path / "out" / "IMG_0001_128x128.jpg")
    assert thumbnail.size == (128, 96)
    assert all(
        abs(got - want) < 20 for got, want in zip(thumbnail.getpixel((64, 48)), (30, 160, 60), strict=True)
    )


def test_mode_format_and_quality_from_the_command_line(run, tmp_path):
    source = write_jpeg(tmp_path / "wide.jpg", size=(900, 300))

    outcome = run(str(source), "--size", "100x100", "--mode", "smart", "--format", "webp", "--quality", "70")

    assert outcome.error is None, outcome.stderr
    thumbnail = Image.open(tmp_path / "wide_100x100.webp")
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (100, 100))
    manifest = json.loads(zipfile.ZipFile(tmp_path / "wide.zip").read("manifest.json"))
    assert [(entry["name"], entry.get("mode")) for entry in manifest["files"]] == [
        ("wide.jpg", None),
        ("wide_100x100.webp", "smart"),
    ]


def test_a_bad_option_is_refused_before_any_work(run, tmp_path):
    source = write_jpeg(tmp_path / "a.jpg")

    outcome = run(str(source), "--quality", "0")

    assert outcome.error == "--quality: quality must be a whole number from 1 to 100."
    assert outcome.returncode == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.jpg"]


def test_no_color_and_force_color_together_are_refused(run, tmp_path):
    outcome = run(write_jpeg(tmp_path / "a.jpg"), "--no-color", "--force-color")
    assert outcome.error == "The --no-color and --force-color options can't be used together."
    assert outcome.returncode == 1


# --- The command line is the one Django gave the management command ---------------------------


def django_parser():
    command = Command()
    command._called_from_command_line = True  # as run_from_argv() sets it: usage errors exit 2
    return command.create_parser("manage.py", "thumbnail")


def cli_parser(settings):
    return cli.build_parser("manage.py thumbnail", default_sizes=settings.THUMBNAILER_DEFAULT_SIZES)


def test_the_help_is_djangos(settings, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal; the same width for both
    assert cli_parser(settings).format_help() == django_parser().format_help()


@pytest.mark.parametrize(
    "arguments, message",
    [
        ([], "the following arguments are required: PATH"),
        (
            ["a.jpg", "--mode", "bogus"],
            "argument --mode: invalid choice: 'bogus' (choose from 'fit', 'fill', 'smart')",
        ),
        (["a.jpg", "--quality", "high"], "argument --quality: invalid int value: 'high'"),
        (["a.jpg", "--nope"], "unrecognized arguments: --nope"),
        (["a.jpg", "--s", "x"], "ambiguous option: --s could match --settings, --size"),
        (["a.jpg", "--fo", "x"], "ambiguous option: --fo could match --force-color, --focus, --format"),
        (["a.jpg", "-v", "7"], "argument -v/--verbosity: invalid choice: 7 (choose from 0, 1, 2, 3)"),
    ],
)
def test_a_usage_error_exits_2_with_djangos_usage_and_message(settings, capsys, arguments, message):
    printed = {}
    for name, parser in [("django", django_parser()), ("cli", cli_parser(settings))]:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(arguments)
        printed[name] = (exited.value.code, capsys.readouterr().err)
    assert printed["cli"] == printed["django"]
    code, stderr = printed["cli"]
    assert code == 2 and stderr.startswith("usage: manage.py thumbnail [-h] [--size WxH]")
    assert stderr.endswith(f"\nmanage.py thumbnail: error: {message}\n")


def test_version_is_djangos(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["manage.py", "thumbnail", "--version"])
    assert (exited.value.code, capsys.readouterr().out) == (0, f"{django.get_version()}\n")
