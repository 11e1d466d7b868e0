"""Animated GIF and WebP: which animations stay animated, and their frames resized for every box."""

from __future__ import annotations

import math
from collections.abc import Iterator

from PIL import Image

from . import crop
from .colour import has_alpha, resizable
from .encode import Rendition, encode_animation, to_rendition
from .geometry import REDUCING_GAP, fit_within, orient, resize, stored_size
from .identify import ImageHeader
from .options import DEFAULT_OPTIONS, ThumbnailOptions

ANIMATED_FORMATS = ("GIF", "WEBP")

# Frames x canvas pixels decoded for one animated thumbnail. Past it, the first frame only,
# so a 300-frame animation on a huge canvas cannot hold a worker for minutes.
MAX_ANIMATION_PIXELS = 400_000_000

# Lanczos reaches 3 output pixels either side when shrinking, reduce() one more.
_RESAMPLE_REACH = 4


def should_animate(header: ImageHeader, *, max_frames: int) -> bool:
    """Whether the thumbnails keep every frame; otherwise they show the first frame only."""
    return (
        header.format in ANIMATED_FORMATS
        and 1 < header.frames <= max_frames
        and header.frames * header.width * header.height <= MAX_ANIMATION_PIXELS
    )


def animated_renditions(
    image: Image.Image,
    header: ImageHeader,
    boxes: list[tuple[int, int]],
    orientation: int,
    options: ThumbnailOptions = DEFAULT_OPTIONS,
) -> Iterator[Rendition]:
    """Every frame decoded once (Pillow composites each onto the canvas), resized for every box.

    fill and smart crop every frame with the same window (chosen on the first frame for
    smart), so the animation does not jump; they resample whole frames.

    Most animations change a small part of the canvas per frame, and a GIF says which (the
    frame's rectangle). Only the thumbnail pixels that rectangle and the previous one can
    reach are resampled again, so the time follows what changes, not the canvas size.
    """
    display_size = (header.width, header.height)
    if options.crops:
        # Animations carry no EXIF orientation in practice: windows are taken on the canvas as stored.
        stored_targets = [crop.fill_size(image.size, box) for box in boxes]
        windows: list[tuple[float, float, float, float] | None] = [None] * len(boxes)
    else:
        stored_targets = [stored_size(fit_within(display_size, box), orientation) for box in boxes]
    thumbnails_per_box: list[list[Image.Image]] = [[] for _ in boxes]
    durations = []
    loop = image.info.get("loop")
    canvas_size = image.size
    previous_extent = None
    for index in range(header.frames):
        image.seek(index)
        image.load()
        # After load: the WebP plugin sets a frame's duration on load, not on seek.
        durations.append(int(image.info.get("duration", 0) or 0))
        # GIF frames come as P first, then RGB or RGBA; resizing RGB skips the premultiplied
        # alpha round trip RGBA needs.
        frame = resizable(image)
        if frame.size != canvas_size:  # a GIF frame past the canvas made Pillow grow it
            frame = frame.crop((0, 0, *canvas_size))
        extent = getattr(image, "dispose_extent", None) if header.format == "GIF" else None
        changed = _union(extent, previous_extent) if index and extent and previous_extent else None
        previous_extent = extent
        if options.crops:
            for number, box in enumerate(boxes):
                if windows[number] is None:
                    windows[number] = (
                        crop.detail_window(frame, box)
                        if options.mode == "smart"
                        else crop.focus_window(frame.size, box, options.focus or (0.5, 0.5))
                    )
                thumbnails_per_box[number].append(
                    frame.resize(
                        stored_targets[number],
                        Image.Resampling.LANCZOS,
                        box=windows[number],
                        reducing_gap=REDUCING_GAP,
                    )
                )
            continue
        for thumbnails, target in zip(thumbnails_per_box, stored_targets, strict=True):
            previous = thumbnails[-1] if thumbnails else None
            if changed is None or previous is None or previous.mode != frame.mode:
                thumbnails.append(resize(frame, target))
            else:
                thumbnails.append(_resize_changed_part(frame, previous, changed))

    if any(has_alpha(thumbnail) for thumbnail in thumbnails_per_box[0]):  # one mode for the whole animation
        thumbnails_per_box = [[frame.convert("RGBA") for frame in frames] for frames in thumbnails_per_box]
    output_format = header.format if options.format == "auto" else options.format.upper()
    for box, thumbnails in zip(boxes, thumbnails_per_box, strict=True):
        frames = [orient(thumbnail, orientation) for thumbnail in thumbnails]
        data = encode_animation(
            frames, output_format, durations=durations, loop=loop, quality=options.quality
        )
        yield to_rendition(box, frames[0].size, output_format, data, mode=options.mode)


def _resize_changed_part(
    frame: Image.Image, previous: Image.Image, changed: tuple[int, int, int, int]
) -> Image.Image:
    """The previous thumbnail with the part the changed canvas rectangle reaches resampled again."""
    scale_x, scale_y = previous.width / frame.width, previous.height / frame.height
    left = max(0, math.floor(changed[0] * scale_x) - _RESAMPLE_REACH)
    top = max(0, math.floor(changed[1] * scale_y) - _RESAMPLE_REACH)
    right = min(previous.width, math.ceil(changed[2] * scale_x) + _RESAMPLE_REACH)
    bottom = min(previous.height, math.ceil(changed[3] * scale_y) + _RESAMPLE_REACH)
    thumbnail = previous.copy()
    if right > left and bottom > top:
        # Same output pixel centres as the whole-frame resize: box edges sit on pixel edges.
        source_box = (left / scale_x, top / scale_y, right / scale_x, bottom / scale_y)
        patch = frame.resize(
            (right - left, bottom - top), Image.Resampling.LANCZOS, box=source_box, reducing_gap=REDUCING_GAP
        )
        thumbnail.paste(patch, (left, top))
    return thumbnail


def _union(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (
        min(first[0], second[0]),
        min(first[1], second[1]),
        max(first[2], second[2]),
        max(first[3], second[3]),
    )
