"""Thumbnail options in the pure pipeline: fill, smart, focus, output formats and quality, on pixels."""

import io
import random

import pytest
from PIL import Image, ImageStat

from thumbnailer.imaging import ThumbnailOptions, make_renditions


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def render(data: bytes, boxes, **options):
    return make_renditions(
        io.BytesIO(data),
        boxes=boxes,
        max_pixels=100_000_000,
        max_frames=300,
        options=ThumbnailOptions(**options),
    ).renditions


def opened(rendition) -> Image.Image:
    return Image.open(io.BytesIO(rendition.data))


def photo(size=(1600, 900)) -> bytes:
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    return encode(image, "JPEG", quality=90)


@pytest.mark.parametrize("mode", ["fill", "smart"])
def test_fill_and_smart_give_exactly_the_box(mode):
    renditions = render(photo(), [(128, 128), (200, 100), (90, 160)], mode=mode)

    assert [(r.width, r.height, r.mode) for r in renditions] == [
        (128, 128, mode),
        (200, 100, mode),
        (90, 160, mode),
    ]
    assert [opened(r).size for r in renditions] == [(128, 128), (200, 100), (90, 160)]


def test_fit_stays_inside_the_box_as_before():
    [rendition] = render(photo(), [(128, 128)])
    assert (rendition.width, rendition.height, rendition.mode) == (128, 72, "fit")


def test_a_small_image_is_never_upscaled_by_fill():
    [rendition] = render(photo((60, 40)), [(128, 128)], mode="fill")
    assert (rendition.width, rendition.height) == (40, 40)


def red_dot_on_white(size, centre) -> bytes:
    image = Image.new("RGB", size, "white")
    x, y = centre
    image.paste((220, 0, 0), (x - 40, y - 40, x + 40, y + 40))
    return encode(image, "PNG")


def red_share(image: Image.Image) -> float:
    pixels = [image.convert("RGB").getpixel((x, y)) for x in range(image.width) for y in range(image.height)]
    return sum(1 for r, g, b in pixels if r > 150 and g < 90 and b < 90) / len(pixels)


def test_fill_keeps_the_focus_point_in_view():
    data = red_dot_on_white((1600, 400), (1450, 200))

    [centred] = render(data, [(100, 100)], mode="fill")
    [focused] = render(data, [(100, 100)], mode="fill", focus=(0.9, 0.5))

    assert red_share(opened(centred)) == 0
    assert red_share(opened(focused)) > 0.02


def detailed_patch_on_flat(size, patch) -> bytes:
    """A flat background with a black-and-white chequered patch (detail that survives shrinking)."""
    image = Image.new("RGB", size, (120, 130, 140))
    for x in range(patch[0], patch[2], 20):
        for y in range(patch[1], patch[3], 20):
            if (x // 20 + y // 20) % 2:
                image.paste((0, 0, 0), (x, y, min(x + 20, patch[2]), min(y + 20, patch[3])))
            else:
                image.paste((255, 255, 255), (x, y, min(x + 20, patch[2]), min(y + 20, patch[3])))
    return encode(image, "PNG")


def test_smart_puts_the_window_on_the_detailed_patch_placed_off_centre():
    data = detailed_patch_on_flat((1600, 400), (1250, 100, 1500, 300))

    [smart] = render(data, [(100, 100)], mode="smart")
    [centre] = render(data, [(100, 100)], mode="fill")

    assert ImageStat.Stat(opened(smart).convert("L")).stddev[0] > 20
    assert ImageStat.Stat(opened(centre).convert("L")).stddev[0] < 2


def test_exif_orientation_is_applied_before_the_crop():
    """Stored 400x200, left half red; orientation 6 shows it 200x400 with the red half on top."""
    stored = Image.new("RGB", (400, 200), (0, 0, 220))
    stored.paste((220, 0, 0), (0, 0, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())

    [top] = render(data, [(100, 50)], mode="fill", focus=(0.5, 0.1))
    [bottom] = render(data, [(100, 50)], mode="fill", focus=(0.5, 0.9))

    assert red_share(opened(top)) > 0.95
    assert red_share(opened(bottom)) == 0


def transparent_png() -> bytes:
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    image.paste((20, 120, 220, 255), (100, 75, 300, 225))
    return encode(image, "PNG")


@pytest.mark.parametrize(
    "requested, pillow_format, extension, keeps_alpha",
    [
        ("png", "PNG", "png", True),
        ("webp", "WEBP", "webp", True),
        ("avif", "AVIF", "avif", True),
        ("jpeg", "JPEG", "jpg", False),
    ],
)
def test_every_format_round_trips_and_transparency_survives_where_it_can(
    requested, pillow_format, extension, keeps_alpha
):
    [rendition] = render(transparent_png(), [(128, 128)], format=requested)

    image = opened(rendition)
    assert (rendition.format, rendition.extension, image.format) == (pillow_format, extension, pillow_format)
    corner = image.convert("RGBA").getpixel((0, 0))
    if keeps_alpha:
        assert corner[3] == 0
    else:
        assert image.mode == "RGB" and corner[:3] == (255, 255, 255)  # flattened onto white


def test_quality_changes_what_a_lossy_encoder_does():
    rng = random.Random(3)
    data = encode(Image.frombytes("RGB", (800, 600), rng.randbytes(800 * 600 * 3)), "PNG")
    sizes = {q: len(render(data, [(256, 256)], format="jpeg", quality=q)[0].data) for q in (20, 95)}
    assert sizes[20] < sizes[95] / 2


def test_animated_inputs_are_cropped_frame_by_frame_alike():
    frames = [Image.new("RGB", (300, 100), colour) for colour in ("red", "green", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    [rendition] = render(data, [(50, 50)], mode="fill")

    image = opened(rendition)
    assert (image.format, image.n_frames, image.size, rendition.mode) == ("GIF", 3, (50, 50), "fill")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "stretch"}, "mode must be one of fit, fill, smart."),
        ({"format": "bmp"}, "format must be one of auto, jpeg, png, webp, avif."),
        ({"focus": (1.2, 0.5)}, "focus must be two fractions between 0 and 1, like 0.5,0.3."),
        ({"quality": 0}, "quality must be a whole number from 1 to 100."),
        ({"quality": 101}, "quality must be a whole number from 1 to 100."),
    ],
)
def test_bad_options_say_what_is_wrong(options, message):
    with pytest.raises(ValueError) as error:
        ThumbnailOptions(**options)
    assert str(error.value) == message
