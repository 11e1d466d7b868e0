"""Encoding: a finished thumbnail (or its frames) to JPEG, PNG, WebP or GIF bytes.

Encoder options, flattening onto white for JPEG, and the shared GIF palette live here
because still and animated GIFs both need it. No metadata of the source reaches the output.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

from .colour import has_alpha

# Output format follows the input family; anything else becomes PNG (with alpha) or JPEG.
_SAME_FAMILY_OUTPUT = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "GIF"}
OUTPUT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "AVIF": "avif"}

# A thumbnail's visual quality is settled by the resampling filter; these keep files small
# without visible artefacts at thumbnail sizes.
JPEG_QUALITY = 85
WEBP_QUALITY = 80
AVIF_QUALITY = 60

_ENCODER_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": JPEG_QUALITY, "optimize": True},
    # Level 4, not zlib's default 6: on photo-like thumbnails 6 spends 2-3x the time (5 ms for
    # 128x96, 135 ms for 512x384 RGBA) for files no smaller; text screenshots grow 13-16%.
    "PNG": {"compress_level": 4},
    "WEBP": {"quality": WEBP_QUALITY, "method": 4},
    # libavif's speed 8 of 10: a 128 px thumbnail in a few ms instead of tens, at sizes where
    # the slower searches gain almost nothing.
    "AVIF": {"quality": AVIF_QUALITY, "speed": 8},
    # Pillow's palette optimisation rescans and remaps every frame to drop unused colours:
    # 20% of an animated thumbnail's time for 8% fewer bytes on a shared 256-colour palette.
    "GIF": {"optimize": False},
}

# GIF has one transparent palette entry and no partial transparency: pixels under half
# opacity become the transparent index, the others keep their colour.
_GIF_TRANSPARENT_INDEX = 255
# Pixels the shared palette of an animation is chosen from: every frame, shrunk to fit.
_PALETTE_SAMPLE_PIXELS = 65_536


@dataclass(frozen=True)
class Rendition:
    """One thumbnail for one box, in display size; never upscaled, never 0 px.

    mode "fit" keeps the aspect inside the box; "fill" and "smart" fill the box exactly (or
    less of its shape, when the image is smaller than the box).
    """

    box: tuple[int, int]
    width: int
    height: int
    format: str
    extension: str
    data: bytes
    mode: str = "fit"


def to_rendition(
    box: tuple[int, int], size: tuple[int, int], output_format: str, data: bytes, *, mode: str = "fit"
) -> Rendition:
    return Rendition(
        box=box,
        width=size[0],
        height=size[1],
        format=output_format,
        extension=OUTPUT_EXTENSIONS[output_format],
        data=data,
        mode=mode,
    )


def output_format_for(source_format: str, *, has_alpha: bool, requested: str = "auto") -> str:
    """The Pillow format to write: the one asked for, or the input's family ("auto")."""
    if requested != "auto":
        return requested.upper()
    if source_format in _SAME_FAMILY_OUTPUT:
        return _SAME_FAMILY_OUTPUT[source_format]
    return "PNG" if has_alpha else "JPEG"


def encode_still(image: Image.Image, output_format: str, *, quality: int | None = None) -> bytes:
    """Encode one thumbnail; quality (1-100) overrides the lossy formats' default."""
    if output_format == "JPEG":
        image = _flatten_on_white(image)
    elif output_format == "GIF":
        (image,) = _to_gif_frames([image])
    elif image.mode == "CMYK":
        image = image.convert("RGB")
    return _save(image, output_format, **({"quality": quality} if quality is not None else {}))


def encode_animation(
    frames: list[Image.Image],
    output_format: str,
    *,
    durations: list[int],
    loop: int | None,
    quality: int | None = None,
) -> bytes:
    options: dict[str, object] = {"save_all": True, "duration": durations}
    if quality is not None and output_format in ("WEBP", "AVIF"):
        options["quality"] = quality
    if loop is not None:  # a GIF without a loop count plays once; keep that
        options["loop"] = loop
    if output_format == "GIF":
        if has_alpha(frames[0]):
            # Restore to background between frames: each frame is a whole composited picture,
            # and its transparent pixels must not show the previous frame through.
            options["disposal"] = 2
        frames = _to_gif_frames(frames)
    for frame in frames:
        frame.info = {key: value for key, value in frame.info.items() if key == "transparency"}
    options["append_images"] = frames[1:]
    return _save(frames[0], output_format, **options)


def _save(image: Image.Image, output_format: str, **options: object) -> bytes:
    # info carries the source's EXIF, XMP, ICC profile and comments; none of it may reach a
    # thumbnail (GPS privacy, and the pixels are sRGB now), so the encoder sees only options.
    image.info = {key: value for key, value in image.info.items() if key == "transparency"}
    buffer = io.BytesIO()
    image.save(buffer, output_format, **{**_ENCODER_OPTIONS[output_format], **options})
    return buffer.getvalue()


def _flatten_on_white(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA"):
        background = Image.new(image.mode[:-1], image.size, 255 if image.mode == "LA" else (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _to_gif_frames(frames: list[Image.Image]) -> list[Image.Image]:
    """Frames in one shared 8-bit palette, with a transparent index if they have alpha.

    One palette for the whole animation: no local colour tables (fewer bytes) and no colour
    shimmer between frames; mapping a frame to a known palette takes 0.02 ms where choosing
    its own takes 0.3. Fast octree is as close as median cut at these sizes (mean error 4.3
    vs 4.2 levels) and 40x faster. No dithering: it costs bytes and makes animations shimmer.
    """
    transparent_frames = has_alpha(frames[0])
    rgb_frames = [frame.convert("RGB") for frame in frames]
    palette = _palette_sample(rgb_frames).quantize(
        255 if transparent_frames else 256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    if transparent_frames:  # 255 colours chosen, so nothing maps to the transparent index
        colours = (palette.getpalette() or [])[: 3 * 255]
        palette.putpalette(colours + [0] * (3 * 256 - len(colours)))
    paletted = []
    for frame, rgb in zip(frames, rgb_frames, strict=True):
        mapped = rgb.quantize(palette=palette, dither=Image.Dither.NONE)
        if transparent_frames:
            transparent = frame.getchannel("A").point(lambda alpha: 255 if alpha < 128 else 0)
            mapped.paste(_GIF_TRANSPARENT_INDEX, mask=transparent)
            mapped.info["transparency"] = _GIF_TRANSPARENT_INDEX
        paletted.append(mapped)
    return paletted


def _palette_sample(frames: list[Image.Image]) -> Image.Image:
    """All frames side by side in one image, each shrunk so the whole stays small."""
    width, height = frames[0].size
    factor = max(1, math.ceil(math.sqrt(len(frames) * width * height / _PALETTE_SAMPLE_PIXELS)))
    if len(frames) == 1:
        return frames[0] if factor == 1 else frames[0].reduce(factor)
    tiles = [frame.reduce(factor) if factor > 1 else frame for frame in frames]
    tile_width, tile_height = tiles[0].size
    sample = Image.new("RGB", (tile_width, tile_height * len(tiles)))
    for index, tile in enumerate(tiles):
        sample.paste(tile, (0, index * tile_height))
    return sample
