"""`manage.py thumbnail`: the worker's pipeline on local files, one line per file, status 1 on failure."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def write_jpeg(path: Path, size=(400, 300), colour=(200, 30, 30)) -> Path:
    Image.new("RGB", size, colour).save(path, "JPEG")
    return path


def run(*args) -> tuple[str, str, CommandError | None]:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("thumbnail", *map(str, args), stdout=stdout, stderr=stderr)
    except CommandError as error:
        return stdout.getvalue(), stderr.getvalue(), error
    return stdout.getvalue(), stderr.getvalue(), None


def test_writes_one_thumbnail_per_size_and_a_zip(tmp_path):
    source = write_jpeg(tmp_path / "My Photo.jpeg")
    out = tmp_path / "out"

    stdout, stderr, error = run(source, "--size", "128x128", "--size", "64x64,256x256", "--out", out)

    assert error is None and stderr == ""
    (line,) = stdout.splitlines()
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


def test_default_size_and_output_next_to_the_input(tmp_path, settings):
    settings.THUMBNAILER_DEFAULT_SIZES = "100x100"
    source = tmp_path / "art.png"
    Image.new("RGBA", (50, 200), (0, 0, 255, 128)).save(source)

    stdout, stderr, error = run(source)

    assert error is None
    assert stdout.startswith(f"{source}: art_100x100.png art.zip (")
    thumbnail = Image.open(tmp_path / "art_100x100.png")
    assert thumbnail.size == (25, 100) and thumbnail.getpixel((10, 50)) == (0, 0, 255, 128)


def test_two_inputs_with_the_same_name_do_not_overwrite_each_other(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_jpeg(tmp_path / "a" / "photo.jpg", colour=(255, 0, 0))
    second = write_jpeg(tmp_path / "b" / "photo.jpg", colour=(0, 0, 255))

    stdout, _, error = run(first, second, "--out", tmp_path / "out")

    assert error is None
    assert [line.split(" (")[0] for line in stdout.splitlines()] == [
        f"{first}: photo_128x128.jpg photo.zip",
        f"{second}: photo_2_128x128.jpg photo_2.zip",
    ]
    assert Image.open(tmp_path / "out" / "photo_128x128.jpg").getpixel((5, 5))[0] > 200
    assert Image.open(tmp_path / "out" / "photo_2_128x128.jpg").getpixel((5, 5))[2] > 200


def test_each_failure_gets_a_clear_line_and_the_status_is_1(tmp_path):
    good = write_jpeg(tmp_path / "good.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(write_jpeg(tmp_path / "whole.jpg").read_bytes()[:400])
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"

    stdout, stderr, error = run(text, good, truncated, missing, "--out", out)

    assert stdout.startswith(f"{good}: good_128x128.jpg good.zip (")
    assert stderr.splitlines() == [
        f"{text}: FAILED (not_an_image) The file is not an image we can read. "
        "Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image.",
        f"{truncated}: FAILED (corrupt_image) The image is damaged or truncated and could not be read.",
        f"{missing}: FAILED (cannot_read_or_write) No such file or directory: {missing}.",
    ]
    assert str(error) == "3 of 4 files failed." and error.returncode == 1
    assert sorted(path.name for path in out.iterdir()) == ["good.zip", "good_128x128.jpg"]


@pytest.mark.parametrize("size", ["128", "0x10", "abc", "99999x1"])
def test_a_bad_size_is_refused_before_any_work(tmp_path, size):
    source = write_jpeg(tmp_path / "photo.jpg")
    stdout, _, error = run(source, "--size", size)
    assert error is not None and str(error).startswith("--size: ")
    assert stdout == "" and sorted(path.name for path in tmp_path.iterdir()) == ["photo.jpg"]


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
    assert f"{bad}: FAILED (not_an_image)" in failed.stderr
    assert "1 of 2 files failed." in failed.stderr


# Run manage.py as the shell does, then list the modules the process imported, at exit.
_LIST_MODULES_AT_EXIT = """
import atexit, json, os, runpy, sys
atexit.register(lambda: open(os.environ["MODULES_FILE"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_cli_process(tmp_path: Path, *args) -> tuple[subprocess.CompletedProcess, set[str]]:
    modules_file = tmp_path / "modules.json"
    completed = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES_AT_EXIT, str(REPO / "manage.py"), "thumbnail", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "MODULES_FILE": str(modules_file)},
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


def test_mode_format_and_quality_from_the_command_line(tmp_path):
    source = write_jpeg(tmp_path / "wide.jpg", size=(900, 300))

    out, err, error = run(
        str(source), "--size", "100x100", "--mode", "smart", "--format", "webp", "--quality", "70"
    )

    assert error is None, err
    thumbnail = Image.open(tmp_path / "wide_100x100.webp")
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (100, 100))
    manifest = json.loads(zipfile.ZipFile(tmp_path / "wide.zip").read("manifest.json"))
    assert [(entry["name"], entry.get("mode")) for entry in manifest["files"]] == [
        ("wide.jpg", None),
        ("wide_100x100.webp", "smart"),
    ]


def test_a_bad_option_is_refused_before_any_work(tmp_path):
    source = write_jpeg(tmp_path / "a.jpg")

    _, _, error = run(str(source), "--quality", "0")

    assert str(error) == "--quality: quality must be a whole number from 1 to 100."
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.jpg"]
