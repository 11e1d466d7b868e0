"""Where to crop for `fill` and `smart`: a window of the box's shape, centred, on a focus point, or on detail.

Pure geometry plus one small Pillow measurement. Every window is computed in display
coordinates (orientation applied) on the image already shrunk on load, so `smart` costs a
few milliseconds whatever the original's size.
"""

from __future__ import annotations

from PIL import Image, ImageFilter

MODES = ("fit", "fill", "smart")
# smart measures detail on an image at most this many pixels on its long side: enough to tell
# a subject from a plain background, small enough to cost about a millisecond.
SMART_SAMPLE_SIDE = 256


def cover_window(size: tuple[int, int], box: tuple[int, int]) -> tuple[float, float]:
    """Width and height of the largest window of the box's aspect ratio inside an image of `size`."""
    width, height = size
    box_width, box_height = box
    if width * box_height > height * box_width:  # wider than the box: full height
        return height * box_width / box_height, float(height)
    return float(width), width * box_height / box_width


def fill_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The output size of `fill`/`smart`: the box, or less of the same shape if the image is smaller."""
    window_width, window_height = cover_window(size, box)
    if window_width >= box[0]:
        return box
    return max(1, round(window_width)), max(1, round(window_height))  # never upscaled


def focus_window(
    size: tuple[int, int], box: tuple[int, int], focus: tuple[float, float] = (0.5, 0.5)
) -> tuple[float, float, float, float]:
    """The window centred on `focus` (fractions of the width and height), moved back inside the image."""
    width, height = size
    window_width, window_height = cover_window(size, box)
    left = min(max(focus[0] * width - window_width / 2, 0.0), width - window_width)
    top = min(max(focus[1] * height - window_height / 2, 0.0), height - window_height)
    return left, top, left + window_width, top + window_height


def detail_window(image: Image.Image, box: tuple[int, int]) -> tuple[float, float, float, float]:
    """The window of the box's shape that holds the most detail (edge energy) in the image.

    The window spans the whole image along one axis, so only its position along the other
    matters: edge strength is summed per column (or row) on a small grey copy, and the window
    with the largest sum wins; ties go to the one nearest the centre.
    """
    width, height = image.size
    window_width, window_height = cover_window(image.size, box)
    horizontal = window_width < width - 0.5
    if not horizontal and window_height >= height - 0.5:
        return 0.0, 0.0, float(width), float(height)

    scale = min(1.0, SMART_SAMPLE_SIDE / max(width, height))
    sample_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = image.convert("L") if image.mode != "L" else image
    edges = grey.resize(sample_size, Image.Resampling.BILINEAR).filter(ImageFilter.FIND_EDGES)
    # One value per column (or row): its mean edge strength, by a box-filter resize.
    profile_size = (sample_size[0], 1) if horizontal else (1, sample_size[1])
    profile = list(edges.resize(profile_size, Image.Resampling.BOX).tobytes())
    # FIND_EDGES leaves a one-pixel frame of zeros' neighbours; the border says nothing of the subject.
    if len(profile) > 2:
        profile[0] = profile[-1] = 0

    span = len(profile)
    window = max(1, min(span, round((window_width if horizontal else window_height) * scale)))
    sums = [0]
    for value in profile:
        sums.append(sums[-1] + value)
    centre = (span - window) / 2
    best = max(
        range(span - window + 1), key=lambda start: (sums[start + window] - sums[start], -abs(start - centre))
    )

    # The best start, as the same fraction of where the window can go in the full image.
    travel = (width - window_width) if horizontal else (height - window_height)
    offset = travel * best / (span - window) if span > window else 0.0
    if horizontal:
        left = min(offset, width - window_width)
        return left, 0.0, left + window_width, float(height)
    top = min(offset, height - window_height)
    return 0.0, top, float(width), top + window_height
