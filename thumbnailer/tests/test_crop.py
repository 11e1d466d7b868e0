"""Crop windows for fill and smart (thumbnailer/imaging/crop.py), on in-memory images."""

import random

import pytest
from PIL import Image

from thumbnailer.imaging import crop


@pytest.mark.parametrize(
    "size, box, window",
    [
        ((800, 400), (100, 100), (400.0, 400.0)),
        ((400, 800), (100, 100), (400.0, 400.0)),
        ((1600, 1200), (160, 90), (1600.0, 900.0)),
        ((300, 300), (128, 128), (300.0, 300.0)),
    ],
)
def test_the_window_is_the_largest_of_the_boxs_shape(size, box, window):
    assert crop.cover_window(size, box) == window


@pytest.mark.parametrize(
    "size, box, output",
    [
        ((4000, 3000), (128, 128), (128, 128)),
        ((4000, 3000), (200, 100), (200, 100)),
        ((60, 40), (128, 128), (40, 40)),
    ],
    ids=["square from landscape", "wide box", "small image: same shape, never upscaled"],
)
def test_fill_size_is_the_box_unless_the_image_is_smaller(size, box, output):
    assert crop.fill_size(size, box) == output


@pytest.mark.parametrize(
    "focus, window",
    [
        ((0.5, 0.5), (200.0, 0.0, 600.0, 400.0)),
        ((0.9, 0.5), (400.0, 0.0, 800.0, 400.0)),  # pushed back inside the right edge
        ((0.1, 0.5), (0.0, 0.0, 400.0, 400.0)),
        ((0.6, 0.2), (280.0, 0.0, 680.0, 400.0)),
    ],
)
def test_the_focus_point_stays_in_view(focus, window):
    assert crop.focus_window((800, 400), (100, 100), focus) == window
    left, top, right, bottom = window
    assert left <= focus[0] * 800 <= right and top <= focus[1] * 400 <= bottom


def detailed_patch_on_flat(size, patch_box) -> Image.Image:
    image = Image.new("RGB", size, (120, 130, 140))
    rng = random.Random(7)
    left, top, right, bottom = patch_box
    patch = Image.frombytes(
        "RGB", (right - left, bottom - top), rng.randbytes((right - left) * (bottom - top) * 3)
    )
    image.paste(patch, (left, top))
    return image


@pytest.mark.parametrize(
    "size, patch, box",
    [
        ((1200, 400), (950, 120, 1100, 280), (100, 100)),
        ((1200, 400), (60, 100, 200, 300), (100, 100)),
        ((400, 1200), (100, 900, 300, 1100), (100, 100)),
        ((1600, 900), (1250, 300, 1500, 600), (300, 400)),
    ],
    ids=["right", "left", "bottom", "portrait box"],
)
def test_smart_finds_the_detailed_patch_off_centre(size, patch, box):
    left, top, right, bottom = crop.detail_window(detailed_patch_on_flat(size, patch), box)

    assert (left, top) <= (patch[0], patch[1]) and (right, bottom) >= (patch[2], patch[3])
    assert (right - left, bottom - top) == pytest.approx(crop.cover_window(size, box))


def test_smart_on_a_flat_image_keeps_the_centre():
    window = crop.detail_window(Image.new("RGB", (900, 300), "white"), (1, 1))
    assert window == pytest.approx((300.0, 0.0, 600.0, 300.0), abs=4)
