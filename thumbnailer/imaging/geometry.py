"""Geometry: the size that fits a box, EXIF orientation, and the resize every thumbnail goes through."""

from __future__ import annotations

from PIL import Image

# reduce() by an integer factor (box filter, very fast) until the image is at most this many
# times the target, then resample with Lanczos. 2.0 is Pillow's thumbnail() default: the
# result is indistinguishable from a full Lanczos pass at thumbnail sizes, several times faster.
REDUCING_GAP = 2.0

_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# EXIF orientations that turn the stored image a quarter: its display width is its stored height.
SWAPS_SIDES = (5, 6, 7, 8)


def fit_within(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """Largest size with size's aspect ratio inside box; never larger than size, never 0."""
    width, height = size
    box_width, box_height = box
    if width <= box_width and height <= box_height:
        return width, height
    scale = min(box_width / width, box_height / height)
    return (
        max(1, min(box_width, round(width * scale))),
        max(1, min(box_height, round(height * scale))),
    )


def stored_size(display_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The size before the EXIF orientation is applied, for a size as displayed."""
    return (display_size[1], display_size[0]) if orientation in SWAPS_SIDES else display_size


def orient(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (1-8) so the image is upright."""
    method = _ORIENTATION_TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A new image of exactly size: reduce() then Lanczos, or a copy if it already is that size."""
    if image.size == size:
        return image.copy()
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
