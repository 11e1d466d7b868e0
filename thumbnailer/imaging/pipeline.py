"""make_renditions: decode once (shrink-on-load), then one rendition per box, in the order given."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from . import fastdecode
from .animation import animated_renditions, should_animate
from .colour import has_alpha, resizable, to_srgb
from .encode import Rendition, encode_still, output_format_for, to_rendition
from .geometry import REDUCING_GAP, fit_within, orient, resize, stored_size
from .identify import ImageHeader, exif_orientation, header_of, open_image, rejecting_bad_images

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
        if should_animate(header, max_frames=max_frames):
            produced = animated_renditions(image, header, boxes, orientation)
        else:
            produced = _still_renditions(image, source, header, boxes, orientation)
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
) -> Iterator[Rendition]:
    """Decode once, then resize, colour-convert, orient and encode for each box in turn."""
    display_size = (header.width, header.height)
    targets = [fit_within(display_size, box) for box in boxes]
    largest = stored_size(max(targets, key=lambda size: size[0] * size[1]), orientation)
    icc_profile = image.info.get("icc_profile")
    working = _decode_shrunk(image, source, header.format, largest)
    output_format = output_format_for(header.format, has_alpha=has_alpha(working))

    for box, target in zip(boxes, targets, strict=True):
        thumbnail = resize(working, stored_size(target, orientation))
        thumbnail = to_srgb(thumbnail, icc_profile)
        thumbnail = orient(thumbnail, orientation)
        yield to_rendition(box, thumbnail.size, output_format, encode_still(thumbnail, output_format))


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
