"""Benchmark: our pipeline against a naive Pillow baseline and pyvips, side by side, in one run.

    .venv/bin/pip install -r requirements-bench.txt && .venv/bin/python bench/bench.py

Generates a deterministic corpus under bench/corpus/ (reused while its recipe is unchanged), then
for every input and pipeline starts a fresh Python process that does the whole job N times —
read the file, make a 128x128 thumbnail, zip the original + thumbnail + manifest in memory — and
reports the median wall time and the process's peak RSS. One process per pipeline and input keeps
each RSS figure its own; "+RSS" is the peak minus the same process's RSS after its imports.

Pipelines:
  ours   thumbnailer.imaging.make_renditions + package_renditions (what the worker and CLI run)
  naive  the tutorial way: Image.open, full decode, copy(), thumbnail(), save, zipfile
  vips   pyvips.Image.thumbnail (libvips shrink-on-load), single-threaded: VIPS_CONCURRENCY=1,
         operation cache off, so every repeat does the work

The CLI row times whole processes, start-up included: `manage.py thumbnail` on 20 x 24 MP JPEGs
against bench/vips_cli.py, a plain pyvips script that writes the same thumbnails and zips.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS = HERE / "corpus"
RECIPE_VERSION = "4"  # bump when the corpus recipe changes, so stale files are regenerated
BOX = (128, 128)
PIPELINES = ("ours", "naive", "vips")


# --- corpus ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    name: str
    file: str
    repeat: int
    note: str = ""


def photo(size: tuple[int, int], seed: int):
    """A deterministic photo-like picture: smooth shapes and gradients plus sensor-like grain.

    Flat synthetic images decode and compress unrealistically fast; grain gives JPEG and PNG
    the entropy (and so the file sizes and decode times) of real photographs.
    """
    from PIL import Image, ImageDraw, ImageFilter

    width, height = size
    rng = random.Random(seed)
    small = (max(64, width // 8), max(48, height // 8))
    red = Image.linear_gradient("L").resize(small).rotate(rng.uniform(0, 360))
    green = Image.radial_gradient("L").resize(small)
    blue = Image.effect_mandelbrot(small, (-2.0, -1.2, 1.0, 1.2), 60)
    base = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(base)
    for _ in range(60):
        x, y = rng.randrange(small[0]), rng.randrange(small[1])
        radius = rng.randrange(4, max(5, small[0] // 6))
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(2)).resize(size, Image.Resampling.BICUBIC)
    grain = Image.frombytes("RGB", size, rng.randbytes(width * height * 3))
    return Image.blend(base, grain, 0.06)


def build_corpus() -> list[Input]:
    """Write the corpus files (if missing or from an older recipe) and list the inputs."""
    from PIL import Image

    CORPUS.mkdir(parents=True, exist_ok=True)
    stamp = CORPUS / "RECIPE"
    fresh = stamp.exists() and stamp.read_text() == RECIPE_VERSION
    inputs: list[Input] = []

    def add(name: str, file: str, repeat: int, make, note: str = "") -> None:
        path = CORPUS / file
        if not (fresh and path.exists()):
            print(f"  generating {file}", file=sys.stderr, flush=True)
            make(path)
        inputs.append(Input(name, file, repeat, note))

    def jpeg(size, seed, **options):
        return lambda path: photo(size, seed).save(path, "JPEG", quality=90, **options)

    def exif_rotated(path):
        from PIL import Image as PILImage

        exif = PILImage.Exif()
        exif[0x0112] = 6
        photo((3000, 4000), 7).transpose(PILImage.Transpose.ROTATE_90).save(
            path, "JPEG", quality=90, exif=exif
        )

    def cmyk(path):
        photo((2000, 1500), 8).convert("CMYK").save(path, "JPEG", quality=90)

    def png_alpha(path):
        image = photo((1600, 1200), 9).convert("RGBA")
        image.putalpha(Image.radial_gradient("L").resize(image.size))
        image.save(path, "PNG")

    def png_16bit(path):
        grey = photo((1600, 1200), 10).convert("L").convert("I")
        grey.point(lambda value: value * 257).convert("I;16").save(path, "PNG")

    def animated_gif(path):
        # Like most real animations (screen captures, memes): a still background and a moving
        # part, so the GIF encoder stores each later frame as the rectangle that changed.
        background = photo((800, 600), 100)
        sprite = photo((240, 180), 101)
        palette = background.quantize(256)
        frames = []
        for index in range(20):
            frame = background.copy()
            frame.paste(sprite, (25 * index, 10 * index))
            frames.append(frame.quantize(palette=palette, dither=Image.Dither.NONE))
        frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)

    def animated_gif_full_frames(path):
        # The worst case: every pixel of every frame changes, so every frame is a whole picture.
        frames = [photo((800, 600), 200 + index).quantize(256) for index in range(20)]
        frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)

    add("JPEG 0.3 MP", "jpeg_0.3mp.jpg", 30, jpeg((640, 480), 1))
    add("JPEG 2 MP", "jpeg_2mp.jpg", 25, jpeg((1632, 1224), 2))
    add("JPEG 12 MP", "jpeg_12mp.jpg", 15, jpeg((4000, 3000), 3))
    add("JPEG 24 MP (x20, RSS)", "jpeg_24mp.jpg", 20, jpeg((6000, 4000), 4), "20 in one process")
    add("JPEG 12 MP progressive", "jpeg_12mp_progressive.jpg", 10, jpeg((4000, 3000), 5, progressive=True))
    add("JPEG 12 MP EXIF-rotated", "jpeg_12mp_rotated.jpg", 15, exif_rotated)
    add("JPEG 3 MP CMYK", "jpeg_3mp_cmyk.jpg", 15, cmyk)
    add("PNG 12 MP photo", "png_12mp.png", 7, lambda path: photo((4000, 3000), 6).save(path, "PNG"))
    add("PNG 2 MP alpha", "png_2mp_alpha.png", 15, png_alpha)
    add("PNG 2 MP 16-bit grey", "png_2mp_16bit.png", 15, png_16bit)
    add("WebP 2 MP", "webp_2mp.webp", 15, lambda path: photo((1632, 1224), 11).save(path, "WEBP", quality=85))
    add("GIF 800x600 20 frames", "gif_20frames.gif", 15, animated_gif)
    add("GIF 800x600 20 full frames", "gif_20_full_frames.gif", 7, animated_gif_full_frames)
    stamp.write_text(RECIPE_VERSION)
    return inputs


# --- the pipelines, each run in its own process ------------------------------------------------


def run_ours(path: Path) -> int:
    from thumbnailer import imaging

    original = path.read_bytes()  # read once: decoded from memory and stored in the zip
    rendered = imaging.make_renditions(
        io.BytesIO(original), boxes=[BOX], max_pixels=100_000_000, max_frames=300
    )
    package = imaging.package_renditions(
        original,
        rendered,
        original_name=path.name,
        thumbnail_name=lambda box, extension: f"thumb.{extension}",
    )
    archive = io.BytesIO()
    package.write_archive(archive)
    return len(archive.getvalue())


def run_naive(path: Path) -> int:
    """The common tutorial code: decode everything, copy, thumbnail(), save, zip."""
    from PIL import Image

    image = Image.open(path)
    image.load()
    if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        image = image.convert("RGB")  # what the popular libraries do: 16-bit grey clips to white
    copy = image.copy()
    copy.thumbnail(BOX)
    output_format = image.format if image.format in ("JPEG", "PNG", "GIF", "WEBP") else "PNG"
    if output_format == "JPEG" and copy.mode not in ("RGB", "L"):
        copy = copy.convert("RGB")
    thumbnail = io.BytesIO()
    copy.save(thumbnail, output_format)
    return _zip_plain(path, thumbnail.getvalue(), output_format.lower())


def run_vips(path: Path) -> int:
    import pyvips

    suffix = {".jpg": ".jpg", ".png": ".png", ".webp": ".webp", ".gif": ".gif"}[path.suffix]
    # n=-1 loads every page of an animation, so vips makes an animated thumbnail like ours.
    source = f"{path}[n=-1]" if suffix in (".gif", ".webp") else str(path)
    thumbnail = pyvips.Image.thumbnail(source, BOX[0], height=BOX[1])
    if suffix == ".jpg" and thumbnail.interpretation == "cmyk":
        thumbnail = thumbnail.colourspace("srgb")
    data = thumbnail.write_to_buffer(suffix + ("[Q=85,strip]" if suffix == ".jpg" else ""))
    return _zip_plain(path, data, suffix[1:])


def _zip_plain(path: Path, thumbnail: bytes, extension: str) -> int:
    """The same archive as ours (original, thumbnail, manifest with sha256), written plainly."""
    original = path.read_bytes()
    members = {path.name: original, f"thumb.{extension}": thumbnail}
    manifest = [
        {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in members.items()
    ]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as output:
        for name, data in members.items():
            output.writestr(name, data)
        output.writestr("manifest.json", json.dumps({"files": manifest}))
    return len(archive.getvalue())


def _rss_mib() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec()
    from the forking parent, which would charge the bench's own corpus building to the child."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(pipeline: str, path: Path, repeat: int) -> None:
    """Child process: import, note RSS, run the job `repeat` times, print JSON facts."""
    run = {"ours": run_ours, "naive": run_naive, "vips": run_vips}[pipeline]
    if pipeline == "vips":
        import pyvips

        pyvips.cache_set_max(0)  # otherwise repeats are answered from vips' operation cache
    else:
        from PIL import Image  # noqa: F401  (imported before the baseline RSS, like vips)

        if pipeline == "ours":
            from thumbnailer import imaging  # noqa: F401
    baseline = _rss_mib()
    times = []
    for _ in range(repeat + 1):  # the first run warms caches and lazy imports; not counted
        started = time.perf_counter()
        run(path)
        times.append((time.perf_counter() - started) * 1000)
    print(
        json.dumps(
            {"median_ms": statistics.median(times[1:]), "peak_mib": _rss_mib(), "baseline_mib": baseline}
        )
    )


def measure(pipeline: str, item: Input, repeat: int, rounds: int) -> dict:
    """The best of `rounds` fresh processes: other load on the machine only ever adds time."""
    results = [_measure_once(pipeline, item, repeat) for _ in range(rounds)]
    timed = [result for result in results if "median_ms" in result]
    return min(timed, key=lambda result: result["median_ms"]) if timed else results[0]


def _measure_once(pipeline: str, item: Input, repeat: int) -> dict:
    environment = {**os.environ, "VIPS_CONCURRENCY": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", pipeline, str(CORPUS / item.file), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=600,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "failed"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- the modes: fit, fill and smart on the same 12 MP JPEG ----------------------------------------

MODES_INPUT = "jpeg_12mp.jpg"


def measure_modes(repeat: int = 15) -> dict[str, float]:
    """Median ms of one 128x128 thumbnail per mode (ours), and libvips' crop=centre / entropy alike.

    Run in this process, the modes interleaved, so they share the machine's state; what matters
    is how much fill and smart add to fit.
    """
    sys.path.insert(0, str(REPO))
    from thumbnailer import imaging

    data = (CORPUS / MODES_INPUT).read_bytes()
    runs = {
        "fit": lambda: imaging.make_renditions(
            io.BytesIO(data), boxes=[BOX], max_pixels=10**8, max_frames=300
        ),
        "fill": lambda: imaging.make_renditions(
            io.BytesIO(data),
            boxes=[BOX],
            max_pixels=10**8,
            max_frames=300,
            options=imaging.ThumbnailOptions(mode="fill"),
        ),
        "smart": lambda: imaging.make_renditions(
            io.BytesIO(data),
            boxes=[BOX],
            max_pixels=10**8,
            max_frames=300,
            options=imaging.ThumbnailOptions(mode="smart"),
        ),
    }
    try:
        import pyvips

        pyvips.cache_set_max(0)
        path = str(CORPUS / MODES_INPUT)
        runs["vips centre"] = lambda: pyvips.Image.thumbnail(
            path, BOX[0], height=BOX[1], crop="centre"
        ).jpegsave_buffer(Q=85)
        runs["vips entropy"] = lambda: pyvips.Image.thumbnail(
            path, BOX[0], height=BOX[1], crop="entropy"
        ).jpegsave_buffer(Q=85)
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat + 1):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values[1:]) for name, values in times.items()}


# --- the CLI row: whole processes, start-up included ---------------------------------------------

CLI_ROW = "CLI 20 x JPEG 24 MP"
CLI_FILES = 20


def cli_corpus() -> list[Path]:
    """20 names for the 24 MP JPEG (hard links): distinct files, as a folder of photos would be."""
    folder = CORPUS / "cli"
    folder.mkdir(exist_ok=True)
    source = CORPUS / "jpeg_24mp.jpg"
    paths = []
    for number in range(1, CLI_FILES + 1):
        path = folder / f"photo_{number:02}.jpg"
        if not path.exists() or path.stat().st_ino != source.stat().st_ino:
            path.unlink(missing_ok=True)
            try:
                path.hardlink_to(source)
            except OSError:
                path.write_bytes(source.read_bytes())
        paths.append(path)
    return paths


def measure_cli(runs: int) -> dict[str, float]:
    """Median wall time (ms) of whole processes: ours and vips alternate, after one warm-up each."""
    paths = [str(path) for path in cli_corpus()]
    commands = {
        "ours": [sys.executable, str(REPO / "manage.py"), "thumbnail"],
        "vips": [sys.executable, str(HERE / "vips_cli.py")],
    }
    environment = {**os.environ, "VIPS_CONCURRENCY": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(runs + 1):  # the first run of each warms the page cache and bytecode; not counted
        for name, command in commands.items():
            with tempfile.TemporaryDirectory(prefix=f"bench-cli-{name}-") as out:
                started = time.perf_counter()
                subprocess.run(
                    [*command, "--out", out, *paths],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    env=environment,
                    cwd=REPO,
                    timeout=600,
                )
                elapsed = (time.perf_counter() - started) * 1000
            if run:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


# --- report ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=2, metavar=("PIPELINE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, help="runs per input and pipeline (default: per input)")
    parser.add_argument("--only", help="only inputs whose name contains this text")
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help="comma-separated subset")
    parser.add_argument(
        "--rounds", type=int, default=2, help="fresh processes per input and pipeline; best kept"
    )
    parser.add_argument("--cli-runs", type=int, default=7, help="whole processes per side for the CLI row")
    options = parser.parse_args()
    if options.worker:
        worker(options.worker[0], Path(options.worker[1]), options.repeat or 5)
        return

    print("building corpus in bench/corpus/ ...", file=sys.stderr, flush=True)
    inputs = [
        item for item in build_corpus() if not options.only or options.only.lower() in item.name.lower()
    ]
    pipelines = [name for name in options.pipelines.split(",") if name]
    started = time.perf_counter()
    header = (
        f"{'input':<26}{'MB':>6}"
        + "".join(f"{name + ' ms':>10}" for name in pipelines)
        + "".join(f"{name + ' +RSS':>12}" for name in pipelines)
        + f"{'naive/ours':>11}{'vips/ours':>10}"
    )
    load = os.getloadavg()[0]
    print(
        f"thumbnail {BOX[0]}x{BOX[1]} + zip, median ms (best of {options.rounds} processes); "
        f"+RSS = peak RSS above the interpreter after imports (MiB); {os.cpu_count()} CPUs, load {load:.2f}"
        + ("  [busy machine: numbers are noisy]" if load > 0.5 else "")
    )
    print(header)
    print("-" * len(header))
    for item in inputs:
        results = {
            name: measure(name, item, options.repeat or item.repeat, options.rounds) for name in pipelines
        }
        size_mb = (CORPUS / item.file).stat().st_size / 1e6
        cells = []
        for name in pipelines:
            result = results[name]
            cells.append(f"{result['median_ms']:>10.1f}" if "median_ms" in result else f"{'error':>10}")
        for name in pipelines:
            result = results[name]
            cells.append(
                f"{result['peak_mib'] - result['baseline_mib']:>12.1f}"
                if "peak_mib" in result
                else f"{'-':>12}"
            )
        ratios = []
        ours = results.get("ours", {}).get("median_ms")
        for other in ("naive", "vips"):
            value = results.get(other, {}).get("median_ms")
            ratios.append(f"{value / ours:>10.2f}x" if ours and value else f"{'-':>11}")
        print(f"{item.name:<26}{size_mb:>6.1f}" + "".join(cells) + ratios[0] + ratios[1][1:], flush=True)
        for name in pipelines:
            if "error" in results[name]:
                print(f"    {name}: {results[name]['error']}")
    baselines = {name: measure(name, inputs[0], 1, 1)["baseline_mib"] for name in pipelines} if inputs else {}
    if baselines:
        print(
            "interpreter RSS after imports (MiB): " + ", ".join(f"{k} {v:.1f}" for k, v in baselines.items())
        )
    if "ours" in pipelines and (not options.only or options.only.lower() in "modes fit fill smart"):
        modes = measure_modes()
        print(
            f"modes on {MODES_INPUT}, 128x128, median ms: "
            + ", ".join(f"{name} {value:.1f}" for name, value in modes.items())
            + f"; smart adds {modes['smart'] - modes['fit']:.1f} ms to fit, fill {modes['fill'] - modes['fit']:.1f} ms"
        )
    if {"ours", "vips"} <= set(pipelines) and (not options.only or options.only.lower() in CLI_ROW.lower()):
        cli = measure_cli(options.cli_runs)
        print(
            f"{CLI_ROW}: whole process, median of {options.cli_runs}: manage.py thumbnail {cli['ours']:.0f} ms, "
            f"bench/vips_cli.py {cli['vips']:.0f} ms, vips/ours {cli['vips'] / cli['ours']:.2f}x"
        )
    print(f"total bench time {time.perf_counter() - started:.0f} s; ratios > 1 mean ours is faster")
    if importlib.util.find_spec("isal") is None:
        print("note: isal is not installed (requirements.txt): ours decoded PNG with Pillow's slower inflate")


if __name__ == "__main__":
    main()
