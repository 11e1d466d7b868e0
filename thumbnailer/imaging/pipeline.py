"""make_renditions: decode once (shrink-on-load), then one rendition per box, in the order given."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from . import crop, fastdecode
from .animation import animated_renditions, should_animate
from .colour import has_alpha, resizable, to_srgb
from .encode import Rendition, encode_still, output_format_for, to_rendition
from .geometry import REDUCING_GAP, fit_within, orient, resize, stored_size
from .identify import ImageHeader, exif_orientation, header_of, open_image, rejecting_bad_images
from .options import DEFAULT_OPTIONS, ThumbnailOptions

# Pillow hands an image's memory back after use, and large blocks go back to the OS, so the
# next image page-faults its memory in again: 40 of the 145 ms of a 12 MP PNG. Up to this
# many 16 MiB blocks are kept for reuse in a process that makes thumbnails (at most 64 MiB).
REUSED_IMAGE_BLOCKS = 4


@dataclass(frozen=True)
class ThumbnailSet:
    original: ImageHeader
    renditions: list[Rendition]


def make_renditions(
    source: BinaryIO,
    *,
    boxes: Sequence[tuple[int, int]],
    max_pixels: int,
    max_frames: int,
    on_progress: Callable[[int, int], None] | None = None,
    options: ThumbnailOptions = DEFAULT_OPTIONS,
) -> ThumbnailSet:
    """Decode once (shrink-on-load) and produce one rendition per box, in the order given."""
    if not boxes:
        raise ValueError("make_renditions needs at least one box.")
    boxes = [(int(width), int(height)) for width, height in boxes]
    if any(width < 1 or height < 1 for width, height in boxes):
        raise ValueError(f"Every box needs two positive sides, got {boxes}.")
    _reuse_image_memory()
    # Read before decoding, outside the error translation: a storage or network error stays
    # an OSError the worker can retry, never a "corrupt image". Decoding from memory is faster.
    if not isinstance(source, io.BytesIO):
        source.seek(0)
        source = io.BytesIO(source.read())

    with rejecting_bad_images(quiet=True):
        image = open_image(source, max_pixels=max_pixels)
        orientation = exif_orientation(image)
        header = header_of(image, orientation)
        # A forced still format (JPEG, PNG, AVIF) takes the first frame of an animation.
        keeps_frames = options.format in ("auto", "webp")
        if keeps_frames and should_animate(header, max_frames=max_frames):
            produced = animated_renditions(image, header, boxes, orientation, options)
        elif options.crops:
            produced = _cropped_renditions(image, source, header, boxes, orientation, options)
        else:
            produced = _still_renditions(image, source, header, boxes, orientation, options)
    renditions: list[Rendition] = []
    while len(renditions) < len(boxes):
        with rejecting_bad_images(quiet=True):
            renditions.append(next(produced))
        # Outside the translation: a failing progress report (the broker, say) is not the image's fault.
        if on_progress is not None:
            on_progress(len(renditions), len(boxes))
    return ThumbnailSet(original=header, renditions=renditions)


def _reuse_image_memory() -> None:
    """Let Pillow keep freed image blocks (process-wide; only raised, never lowered)."""
    if Image.core.get_blocks_max() < REUSED_IMAGE_BLOCKS:
        Image.core.set_blocks_max(REUSED_IMAGE_BLOCKS)


def _still_renditions(
    image: Image.Image,
    source: BinaryIO,
    header: ImageHeader,
    boxes: list[tuple[int, int]],
    orientation: int,
    options: ThumbnailOptions,
) -> Iterator[Rendition]:
    """fit: decode once, then resize, colour-convert, orient and encode for each box in turn."""
    display_size = (header.width, header.height)
    targets = [fit_within(display_size, box) for box in boxes]
    largest = stored_size(max(targets, key=lambda size: size[0] * size[1]), orientation)
    icc_profile = image.info.get("icc_profile")
    working = _decode_shrunk(image, source, header.format, largest)
    output_format = output_format_for(header.format, has_alpha=has_alpha(working), requested=options.format)

    for box, target in zip(boxes, targets, strict=True):
        thumbnail = resize(working, stored_size(target, orientation))
        thumbnail = to_srgb(thumbnail, icc_profile)
        thumbnail = orient(thumbnail, orientation)
        data = encode_still(thumbnail, output_format, quality=options.quality)
        yield to_rendition(box, thumbnail.size, output_format, data)


def _cropped_renditions(
    image: Image.Image,
    source: BinaryIO,
    header: ImageHeader,
    boxes: list[tuple[int, int]],
    orientation: int,
    options: ThumbnailOptions,
) -> Iterator[Rendition]:
    """fill and smart: exactly the box, from a window of its shape chosen on the shrunk image.

    The whole image is decoded at REDUCING_GAP times the size the window needs, then turned
    upright (EXIF orientation comes before any crop), and each window is resampled straight
    to its box: Image.resize(box=...) crops and scales in one pass.
    """
    display_size = (header.width, header.height)
    # At what scale each box's window becomes the box: the whole image at that scale is what
    # shrink-on-load must at least give.
    scales = [crop.fill_size(display_size, box)[0] / crop.cover_window(display_size, box)[0] for box in boxes]
    whole = (round(display_size[0] * max(scales)), round(display_size[1] * max(scales)))
    icc_profile = image.info.get("icc_profile")
    working = orient(
        _decode_shrunk(image, source, header.format, stored_size(whole, orientation)), orientation
    )
    output_format = output_format_for(header.format, has_alpha=has_alpha(working), requested=options.format)
    # Window coordinates are computed on the display size; the working image is smaller.
    to_working = working.width / display_size[0], working.height / display_size[1]

    for box in boxes:
        if options.mode == "smart":
            left, top, right, bottom = crop.detail_window(working, box)
        else:
            focus = options.focus or (0.5, 0.5)
            left, top, right, bottom = crop.focus_window(display_size, box, focus)
            left, right = left * to_working[0], right * to_working[0]
            top, bottom = top * to_working[1], bottom * to_working[1]
        target = crop.fill_size(display_size, box)
        thumbnail = working.resize(
            target, Image.Resampling.LANCZOS, box=(left, top, right, bottom), reducing_gap=REDUCING_GAP
        )
        thumbnail = to_srgb(thumbnail, icc_profile)
        data = encode_still(thumbnail, output_format, quality=options.quality)
        yield to_rendition(box, thumbnail.size, output_format, data, mode=options.mode)


def _decode_shrunk(
    image: Image.Image, source: BinaryIO, image_format: str, largest: tuple[int, int]
) -> Image.Image:
    """Decode once, as small as still gives REDUCING_GAP times the largest target (stored orientation)."""
    wanted = (int(largest[0] * REDUCING_GAP), int(largest[1] * REDUCING_GAP))
    if image_format in ("JPEG", "HEIF"):
        # JPEG: DCT scaling, libjpeg decodes at 1/2, 1/4 or 1/8 size, so the full-size image
        # never exists. HEIF: pillow-heif decodes the embedded thumbnail instead (iPhones
        # store a 320x240 one) when it is a true scaled copy (same crop, rotation, profile):
        # 10 ms instead of 900 ms for a 12 MP HEVC grid.
        image.draft(None, wanted)
    elif image_format == "PNG":
        fastdecode.load_png(image)
    elif image_format == "WEBP":
        shrunk = fastdecode.decode_webp_scaled(image, source, wanted)
        if shrunk is not None:
            return shrunk
    return resizable(image)
