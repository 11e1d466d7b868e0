"""The pure image pipeline, on images built in memory: no database, no Django, no files."""

import hashlib
import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageCms, ImageDraw, PngImagePlugin

from thumbnailer import imaging
from thumbnailer.imaging import ArchiveMember, ImageHeader, ImageRejected, fastdecode, pipeline
from thumbnailer.imaging.encode import OUTPUT_EXTENSIONS, encode_still

from .support.images import raw_png

# The pipeline registers pillow-heif only when a HEIF file comes (test_heif_support_loads_on_
# the_first_heif_file checks that in a fresh process); these tests also write HEIC fixtures.
pillow_heif.register_heif_opener()

MAX_PIXELS = 100_000_000
BOX = (128, 128)

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


# --- helpers --------------------------------------------------------------------------------


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def render(data: bytes, *, boxes=(BOX,), max_frames=300, max_pixels=MAX_PIXELS, on_progress=None):
    return imaging.make_renditions(
        io.BytesIO(data),
        boxes=list(boxes),
        max_pixels=max_pixels,
        max_frames=max_frames,
        on_progress=on_progress,
    )


def only_rendition(data: bytes, **kwargs) -> tuple[imaging.Rendition, Image.Image]:
    (rendition,) = render(data, **kwargs).renditions
    return rendition, Image.open(io.BytesIO(rendition.data))


def quadrants(size=(300, 200), colours=(RED, GREEN, BLUE, WHITE), mode="RGB") -> Image.Image:
    """Top-left, top-right, bottom-left, bottom-right flat colours: shows any flip or rotation."""
    width, height = size
    image = Image.new(mode, size)
    half_width, half_height = width // 2, height // 2
    for (left, top), colour in zip(
        ((0, 0), (half_width, 0), (0, half_height), (half_width, half_height)), colours, strict=True
    ):
        image.paste(
            colour,
            (
                left,
                top,
                left + (width - half_width if left else half_width),
                top + (height - half_height if top else half_height),
            ),
        )
    return image


def quadrant_colours(image: Image.Image) -> list[tuple[int, ...]]:
    image = image.convert("RGB")
    width, height = image.size
    points = (
        (width // 4, height // 4),
        (3 * width // 4, height // 4),
        (width // 4, 3 * height // 4),
        (3 * width // 4, 3 * height // 4),
    )
    return [image.getpixel(point) for point in points]


def photo_like(size) -> Image.Image:
    """Smooth gradients plus a deterministic pattern, so PNG picks varied row filters."""
    width, height = size
    image = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize(size),
            Image.radial_gradient("L").resize(size),
            Image.effect_mandelbrot(size, (-2.0, -1.2, 1.0, 1.2), 40),
        ),
    )
    pattern = Image.frombytes(
        "L", size, bytes((x * 7 + y * 13) % 251 for y in range(height) for x in range(width))
    )
    return Image.blend(image, Image.merge("RGB", (pattern,) * 3), 0.2)


def near(actual, expected, tolerance=24) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


D50 = (0.9642, 1.0, 0.8249)


def icc_profile(
    device_class: bytes, colour_space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]
) -> bytes:
    """A minimal ICC v2.1 profile: header, tag table, tags (with a description and D50 white)."""
    description = b"desc\0\0\0\0" + struct.pack(">I", 5) + b"test\0" + b"\0" * 79
    tags = [(b"desc", description), (b"wtpt", _xyz(*D50)), *tags]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (
        struct.pack(">I", offset + len(data))
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + device_class
        + colour_space
        + pcs
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + _xyz(*D50)[8:]
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def swapped_primaries_profile() -> bytes:
    """An RGB ICC profile whose red primary is sRGB's green and vice versa.

    Pure red pixels tagged with it are green in sRGB: an unmistakable sign the profile was applied.
    """
    gamma = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2
    return icc_profile(
        b"mntr",
        b"RGB ",
        b"XYZ ",
        [
            (b"rXYZ", _xyz(0.3851, 0.7169, 0.0971)),  # sRGB green (D50)
            (b"gXYZ", _xyz(0.4361, 0.2225, 0.0139)),  # sRGB red (D50)
            (b"bXYZ", _xyz(0.1431, 0.0606, 0.7141)),
            (b"rTRC", gamma),
            (b"gTRC", gamma),
            (b"bTRC", gamma),
        ],
    )


# Lab of each CMYK corner (ink fully off or on) in the test profile below; other corners dark grey.
CYAN_IS_RED_LAB = {
    (0, 0, 0, 0): (100, 0, 0),
    (1, 0, 0, 0): (53.2, 80.1, 67.2),  # sRGB red
    (0, 1, 0, 0): (87.7, -86.2, 83.2),  # sRGB green
    **{(c, m, y, 1): (0, 0, 0) for c in (0, 1) for m in (0, 1) for y in (0, 1)},
}


def cmyk_profile_cyan_is_red() -> bytes:
    """A CMYK ICC profile (a 2-point lut16 to Lab) in which cyan ink looks red and magenta green.

    Only a profile that is really applied turns a pure cyan pixel red; Pillow's plain
    CMYK->RGB or the no-profile ink model would make it cyan.
    """

    def lab16(lightness: float, a: float, b: float) -> bytes:  # ICC v2 16-bit Lab encoding
        return struct.pack(">HHH", round(lightness * 652.8), round((a + 128) * 256), round((b + 128) * 256))

    corners = b"".join(
        lab16(*CYAN_IS_RED_LAB.get((c, m, y, k), (20, 0, 0)))
        for c in (0, 1)
        for m in (0, 1)
        for y in (0, 1)
        for k in (0, 1)
    )
    identity = b"".join(_s15(value) for value in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    linear = struct.pack(">HH", 0, 65535)
    lut = (
        b"mft2\0\0\0\0"
        + bytes((4, 3, 2, 0))
        + identity
        + struct.pack(">HH", 2, 2)
        + linear * 4
        + corners
        + linear * 3
    )
    return icc_profile(b"prtr", b"CMYK", b"Lab ", [(b"A2B0", lut)])


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SecretCameraMaker"  # Make
    exif[0x0112] = orientation
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 4.0), 3: "E", 4: (4.0, 53.0, 0.0)})  # GPS
    return exif


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description about="SecretXmpNote"/></rdf:RDF></x:xmpmeta>'


# --- read_header ------------------------------------------------------------------------------


def _sample(image_format: str, **options) -> bytes:
    image = Image.new("RGB", (40, 30), (10, 120, 200))
    return encode(image, image_format, **options)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_sample("JPEG"), ImageHeader("JPEG", 40, 30, 1, "jpg")),
        (_sample("JPEG", exif=exif_with_gps(orientation=6)), ImageHeader("JPEG", 30, 40, 1, "jpg")),
        (_sample("PNG"), ImageHeader("PNG", 40, 30, 1, "png")),
        (_sample("GIF"), ImageHeader("GIF", 40, 30, 1, "gif")),
        (_sample("WEBP"), ImageHeader("WEBP", 40, 30, 1, "webp")),
        (_sample("BMP"), ImageHeader("BMP", 40, 30, 1, "bmp")),
        (_sample("TIFF"), ImageHeader("TIFF", 40, 30, 1, "tiff")),
        (_sample("ICO", sizes=[(40, 30)]), ImageHeader("ICO", 40, 30, 1, "ico")),
        (_sample("AVIF"), ImageHeader("AVIF", 40, 30, 1, "avif")),
        (_sample("HEIF"), ImageHeader("HEIF", 40, 30, 1, "heic")),
    ],
    ids=["jpeg", "jpeg-rotated", "png", "gif", "webp", "bmp", "tiff", "ico", "avif", "heic"],
)
def test_read_header_identifies_accepted_formats_by_content(data, expected):
    """Every accepted family is identified from its bytes, with its display size and extension."""
    assert imaging.read_header(io.BytesIO(data), max_pixels=MAX_PIXELS) == expected


def test_read_header_counts_animation_frames():
    frames = [Image.new("RGB", (20, 10), (index * 40, 0, 0)) for index in range(4)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert imaging.read_header(io.BytesIO(data), max_pixels=MAX_PIXELS).frames == 4


PSD_HEADER = b"8BPS\x00\x01" + b"\x00" * 6 + struct.pack(">HIIHH", 3, 10, 10, 8, 3)
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"hello, this is text", "not_an_image"),
        (b"\x00" * 100, "not_an_image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "unsupported_format"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "unsupported_format"),
        (PSD_HEADER, "unsupported_format"),
        (SVG, "unsupported_format"),
        (raw_png(20_000, 20_000, bit_depth=8, colour_type=2), "too_many_pixels"),
        # Past twice Pillow's own MAX_IMAGE_PIXELS, Pillow raises DecompressionBombError itself.
        (raw_png(60_000, 60_000, bit_depth=8, colour_type=2), "too_many_pixels"),
    ],
    ids=["empty", "text", "zeros", "pdf", "eps", "psd", "svg", "100mp-plus", "bomb"],
)
def test_read_header_rejects_bad_input_with_a_code(data, code):
    with pytest.raises(ImageRejected) as caught:
        imaging.read_header(io.BytesIO(data), max_pixels=MAX_PIXELS)
    assert caught.value.code == code
    assert caught.value.message.endswith(".")


def _cursor() -> bytes:
    """A Windows cursor: an ICO with BMP entries whose type field says 2 (cursor) instead of 1 (icon)."""
    data = bytearray(_sample("ICO", sizes=[(16, 16)], bitmap_format="bmp"))
    data[2] = 2
    return bytes(data)


def _tga_header(width: int, height: int, *, depth: int = 24) -> bytes:
    """The 18-byte header of an uncompressed true-colour TGA, top-left origin."""
    return b"\x00\x00\x02" + bytes(9) + struct.pack("<HHBB", width, height, depth, 0x20)


SUN_RASTER = struct.pack(">8I", 0x59A66A95, 40, 30, 24, 40 * 30 * 3, 1, 0, 0) + bytes(40 * 30 * 3)
XPM = b'/* XPM */\nstatic char *image[] = {\n"2 2 1 1",\n"a c #FF0000",\n"aa",\n"aa"\n};\n'
PLACEABLE_WMF = (
    struct.pack("<IHhhhhHIH", 0x9AC6CDD7, 0, 0, 0, 400, 300, 1440, 0, 0) + b"\x01\x00\x09\x00" + bytes(60)
)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        pytest.param(_sample("TGA"), "TGA", id="tga"),
        pytest.param(_sample("TGA", compression="tga_rle"), "TGA", id="tga-rle"),
        # Header only, with a canvas Pillow itself would refuse: still named.
        pytest.param(_tga_header(60_000, 60_000), "TGA", id="tga-huge-header"),
        pytest.param(_sample("PCX"), "PCX", id="pcx"),
        pytest.param(_sample("PPM"), "Netpbm (PBM/PGM/PPM)", id="ppm"),
        pytest.param(encode(Image.new("L", (40, 30), 90), "PPM"), "Netpbm (PBM/PGM/PPM)", id="pgm"),
        pytest.param(encode(Image.new("1", (40, 30), 1), "PPM"), "Netpbm (PBM/PGM/PPM)", id="pbm"),
        pytest.param(b"P1\n2 2\n0 1\n1 0\n", "Netpbm (PBM/PGM/PPM)", id="pbm-plain"),
        pytest.param(_sample("SGI"), "SGI", id="sgi"),
        pytest.param(SUN_RASTER, "Sun raster", id="sun"),
        pytest.param(encode(Image.new("1", (40, 30), 1), "XBM"), "X bitmap (XBM)", id="xbm"),
        pytest.param(XPM, "X pixmap (XPM)", id="xpm"),
        pytest.param(_cursor(), "Windows cursor (CUR)", id="cur"),
        pytest.param(PLACEABLE_WMF, "Windows metafile (WMF/EMF)", id="wmf"),
        pytest.param(_sample("QOI"), "QOI", id="qoi"),
        pytest.param(encode(Image.new("RGBA", (40, 30)), "DDS"), "DirectDraw Surface", id="dds"),
        pytest.param(encode(Image.new("RGB", (32, 32)), "ICNS"), "Apple icon (ICNS)", id="icns"),
        pytest.param(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "PostScript/EPS", id="eps"),
        pytest.param(b"\xc5\xd0\xd3\xc6" + bytes(28), "EPS", id="eps-binary"),
    ],
)
def test_known_formats_we_do_not_take_are_named_without_decoding_them(data, name, monkeypatch):
    """Named from the header alone: no decoder is ever asked for, and Ghostscript never runs."""
    from PIL import EpsImagePlugin

    used = []
    monkeypatch.setattr(Image, "_getdecoder", lambda mode, decoder_name, *args: used.append(decoder_name))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *args, **kwargs: used.append("ghostscript"))

    with pytest.raises(ImageRejected) as caught:
        imaging.read_header(io.BytesIO(data), max_pixels=MAX_PIXELS)

    assert (caught.value.code, caught.value.message) == (
        "unsupported_format",
        f"{name} files are not supported. Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image.",
    )
    assert used == []


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 8, _tga_header(40, 30, depth=7) + bytes(40 * 30 * 3)],
    ids=["byte-ramp", "tga-header-with-impossible-depth"],
)
def test_bytes_no_header_check_recognises_are_not_an_image(data):
    """TGA has no magic number; bytes its header check refuses must not be called TGA."""
    with pytest.raises(ImageRejected) as caught:
        imaging.read_header(io.BytesIO(data), max_pixels=MAX_PIXELS)
    assert caught.value.code == "not_an_image"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_read_header_accepts_up_to_our_limit_not_pillows():
    """Pillow's own bomb limit (89 MP) only warns below twice its value; our 100 MP cap decides."""
    data = raw_png(9_700, 10_000, bit_depth=8, colour_type=2)  # 97 MP
    assert imaging.read_header(io.BytesIO(data), max_pixels=MAX_PIXELS) == ImageHeader(
        "PNG", 9_700, 10_000, 1, "png"
    )
    with pytest.raises(ImageRejected) as caught:
        imaging.read_header(io.BytesIO(data), max_pixels=50_000_000)
    assert (caught.value.code, caught.value.message) == (
        "too_many_pixels",
        "The image is 9700x10000 pixels (97 MP); the limit is 50 MP.",
    )


def test_read_header_never_decodes_pixel_data():
    """A header with no pixel data at all is enough: the upload view never decodes."""
    data = raw_png(4000, 3000, bit_depth=8, colour_type=2)
    assert imaging.read_header(io.BytesIO(data), max_pixels=MAX_PIXELS) == ImageHeader(
        "PNG", 4000, 3000, 1, "png"
    )


# --- make_renditions: bad input ---------------------------------------------------------------


def _zeroed_inside_idat(png: bytes) -> bytes:
    """The PNG with 64 bytes of its deflate stream zeroed: an invalid stream, not a short one."""
    start = png.index(b"IDAT") + 4 + 2000
    return png[:start] + bytes(64) + png[start + 64 :]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (_sample("JPEG")[:300], "corrupt_image"),
        (_sample("PNG")[:-30], "corrupt_image"),
        (raw_png(40, 30, bit_depth=8, colour_type=2), "corrupt_image"),  # header, no pixels
        (_sample("GIF")[:-10], "corrupt_image"),
        (_sample("WEBP")[:60], "corrupt_image"),
        (encode(quadrants((1200, 800)), "WEBP")[:-500], "corrupt_image"),  # through libwebp's scaled decode
        (encode(quadrants((1200, 800)), "PNG")[:-500], "corrupt_image"),  # through the ISA-L inflate
        (_zeroed_inside_idat(encode(photo_like((600, 400)), "PNG")), "corrupt_image"),  # ISA-L's error
        (b"", "empty_file"),
        (b"GIF89a not really", "not_an_image"),
        (raw_png(20_000, 20_000, bit_depth=8, colour_type=2), "too_many_pixels"),
    ],
    ids=[
        "jpeg-truncated",
        "png-truncated",
        "png-no-idat",
        "gif-truncated",
        "webp-truncated",
        "big-webp-truncated",
        "big-png-truncated",
        "png-bad-deflate",
        "empty",
        "fake-gif",
        "too-many-pixels",
    ],
)
def test_make_renditions_turns_every_bad_image_into_image_rejected(data, code):
    with pytest.raises(ImageRejected) as caught:
        render(data)
    assert caught.value.code == code


class _FailingStorage(io.RawIOBase):
    """A file whose storage fails mid-read, like a dropped network connection."""

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return 0

    def read(self, size=-1):
        raise ConnectionResetError("storage went away")


def test_a_storage_error_is_not_mistaken_for_a_corrupt_image():
    """The worker must be able to retry it: it stays an OSError, never ImageRejected."""
    with pytest.raises(ConnectionResetError):
        imaging.make_renditions(_FailingStorage(), boxes=[BOX], max_pixels=MAX_PIXELS, max_frames=300)


class Interrupted(Exception):
    """Like Celery's SoftTimeLimitExceeded: raised into the decoder by the worker, not by the image."""


def test_an_interruption_while_decoding_is_not_reported_as_a_bad_image(monkeypatch):
    def interrupt(*args, **kwargs):
        raise Interrupted("time is up")

    monkeypatch.setattr(pipeline, "resize", interrupt)
    with pytest.raises(Interrupted):
        render(encode(quadrants(), "JPEG"))


def test_a_failing_progress_report_is_not_reported_as_a_bad_image():
    def broker_down(done, total):
        raise ConnectionRefusedError("redis is down")

    with pytest.raises(ConnectionRefusedError):
        render(encode(quadrants(), "PNG"), on_progress=broker_down)


# --- geometry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((300, 200), (128, 128), (128, 85)),
        ((200, 300), (128, 128), (85, 128)),
        ((1, 20_000), (128, 128), (1, 128)),
        ((20_000, 1), (128, 128), (128, 1)),
        ((1, 1), (128, 128), (1, 1)),
        ((100, 50), (128, 128), (100, 50)),
        ((4000, 3000), (256, 64), (85, 64)),
    ],
)
def test_thumbnail_fits_its_box_never_upscaled_never_zero(size, box, expected):
    image = Image.new("L", size, 90)
    rendition, thumbnail = only_rendition(encode(image, "PNG"), boxes=[box])
    assert (rendition.width, rendition.height) == thumbnail.size == expected
    assert rendition.box == box


def test_several_boxes_come_out_in_order_with_progress():
    progress = []
    result = render(
        encode(quadrants((1200, 800)), "JPEG"),
        boxes=[(128, 128), (512, 512), (64, 32)],
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert [(r.box, r.width, r.height) for r in result.renditions] == [
        ((128, 128), 128, 85),
        ((512, 512), 512, 341),
        ((64, 32), 48, 32),
    ]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    for rendition in result.renditions:
        thumbnail = Image.open(io.BytesIO(rendition.data))
        assert thumbnail.size == (rendition.width, rendition.height)
        assert all(
            near(got, want)
            for got, want in zip(quadrant_colours(thumbnail), (RED, GREEN, BLUE, WHITE), strict=True)
        )


# --- orientation ------------------------------------------------------------------------------

# What the camera stored for an upright picture, per EXIF orientation: the inverse transform.
STORED_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(orientation, image_format):
    upright = quadrants((300, 200))
    transpose = STORED_FOR_ORIENTATION[orientation]
    stored = upright.transpose(transpose) if transpose is not None else upright
    data = encode(stored, image_format, exif=exif_with_gps(orientation))

    rendition, thumbnail = only_rendition(data)

    assert (rendition.width, rendition.height) == thumbnail.size == (128, 85)
    colours = quadrant_colours(thumbnail)
    assert all(near(got, want) for got, want in zip(colours, (RED, GREEN, BLUE, WHITE), strict=True)), colours


# --- metadata never leaks ---------------------------------------------------------------------


SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _png_text(key: str, value: bytes) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt(key, value.decode())
    return info


@pytest.mark.parametrize(
    ("image_format", "metadata"),
    [
        ("JPEG", {"exif": exif_with_gps(), "xmp": XMP, "icc_profile": SRGB_PROFILE}),
        (
            "PNG",
            {
                "exif": exif_with_gps(),
                "pnginfo": _png_text("XML:com.adobe.xmp", XMP),
                "icc_profile": SRGB_PROFILE,
            },
        ),
        ("WEBP", {"exif": exif_with_gps(), "xmp": XMP, "icc_profile": SRGB_PROFILE}),
        ("TIFF", {"tiffinfo": {271: "SecretCameraMaker", 700: XMP}, "icc_profile": SRGB_PROFILE}),
    ],
    ids=["jpeg", "png", "webp", "tiff"],
)
def test_exif_gps_xmp_and_icc_never_reach_a_thumbnail(image_format, metadata):
    data = encode(quadrants((300, 200)), image_format, **metadata)
    assert b"SecretCameraMaker" in data and b"SecretXmpNote" in data  # the source really has them

    rendition, thumbnail = only_rendition(data)

    assert b"SecretCameraMaker" not in rendition.data
    assert b"SecretXmpNote" not in rendition.data
    assert b"Exif\x00\x00" not in rendition.data and b"eXIf" not in rendition.data
    assert not thumbnail.getexif()
    assert {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp"}.isdisjoint(thumbnail.info)


# --- output format policy and transparency ----------------------------------------------------


def _rgba_half_transparent() -> Image.Image:
    image = Image.new("RGBA", (200, 100), (255, 0, 0, 255))
    image.paste((0, 0, 255, 0), (100, 0, 200, 100))
    return image


@pytest.mark.parametrize(
    ("source", "image_format", "options", "expected_format", "expected_mode_has_alpha"),
    [
        (Image.new("RGB", (200, 100), RED), "JPEG", {}, "JPEG", False),
        (Image.new("RGB", (200, 100), RED), "PNG", {}, "PNG", False),
        (_rgba_half_transparent(), "PNG", {}, "PNG", True),
        (Image.new("RGB", (200, 100), RED), "WEBP", {}, "WEBP", False),
        (_rgba_half_transparent(), "WEBP", {}, "WEBP", True),
        (_rgba_half_transparent(), "GIF", {}, "GIF", True),
        (Image.new("RGB", (200, 100), RED), "BMP", {}, "JPEG", False),
        (Image.new("RGB", (200, 100), RED), "TIFF", {}, "JPEG", False),
        (_rgba_half_transparent(), "TIFF", {}, "PNG", True),
        (_rgba_half_transparent(), "ICO", {"sizes": [(200, 100)]}, "PNG", True),
        (Image.new("RGB", (200, 100), RED), "AVIF", {}, "JPEG", False),
        (_rgba_half_transparent(), "AVIF", {}, "PNG", True),
        (Image.new("RGB", (200, 100), RED), "HEIF", {}, "JPEG", False),
    ],
    ids=[
        "jpeg",
        "png",
        "png-alpha",
        "webp",
        "webp-alpha",
        "gif-alpha",
        "bmp",
        "tiff",
        "tiff-alpha",
        "ico-alpha",
        "avif",
        "avif-alpha",
        "heic",
    ],
)
def test_output_format_follows_the_input_family_and_keeps_transparency(
    source, image_format, options, expected_format, expected_mode_has_alpha
):
    rendition, thumbnail = only_rendition(encode(source, image_format, **options))

    assert rendition.format == thumbnail.format == expected_format
    assert rendition.extension == OUTPUT_EXTENSIONS[expected_format]
    assert (rendition.width, rendition.height) == thumbnail.size == (128, 64)
    rgba = thumbnail.convert("RGBA")
    assert near(rgba.getpixel((20, 32)), (255, 0, 0, 255), tolerance=40)
    if expected_mode_has_alpha:
        assert rgba.getpixel((110, 32))[3] == 0  # the transparent half stays transparent
    else:
        assert rgba.getpixel((110, 32))[3] == 255


def test_alpha_is_flattened_onto_white_when_the_output_is_jpeg():
    """The policy sends alpha to PNG; the JPEG encoder still never turns transparency black."""
    data = encode_still(_rgba_half_transparent(), "JPEG")
    jpeg = Image.open(io.BytesIO(data))
    assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
    assert near(jpeg.getpixel((150, 50)), WHITE, tolerance=8)
    assert near(jpeg.getpixel((50, 50)), RED, tolerance=24)


# --- colour and depth --------------------------------------------------------------------------


def test_embedded_icc_profile_is_converted_to_srgb():
    data = encode(Image.new("RGB", (200, 100), RED), "JPEG", icc_profile=swapped_primaries_profile())
    rendition, thumbnail = only_rendition(data)
    red, green, blue = thumbnail.getpixel((64, 32))
    assert green > 200 and red < 60 and blue < 80, (red, green, blue)
    assert "icc_profile" not in thumbnail.info  # the pixels are sRGB now; untagged means sRGB


def test_broken_icc_profile_is_ignored_not_fatal():
    data = encode(Image.new("RGB", (200, 100), RED), "PNG", icc_profile=b"not a profile" * 20)
    rendition, thumbnail = only_rendition(data)
    assert near(thumbnail.convert("RGB").getpixel((64, 32)), RED)


@pytest.mark.parametrize("image_format", ["JPEG", "TIFF"])
@pytest.mark.parametrize(
    ("ink", "expected"),
    [
        ((0, 0, 0, 0), (255, 255, 255)),  # bare paper
        ((255, 0, 0, 0), (0, 174, 239)),  # process cyan, not the screen's (0, 255, 255)
        ((0, 255, 0, 0), (236, 0, 140)),
        ((0, 0, 255, 0), (255, 242, 0)),
        ((0, 0, 0, 255), (35, 31, 32)),
        ((255, 255, 0, 0), (0, 0, 131)),  # cyan over magenta: blue
        ((128, 0, 0, 0), (128, 215, 247)),  # half-tone cyan
    ],
    ids=["paper", "cyan", "magenta", "yellow", "black", "blue", "half-cyan"],
)
def test_cmyk_without_a_profile_is_rendered_as_printed_inks(image_format, ink, expected):
    cmyk = Image.new("CMYK", (200, 100), ink)
    rendition, thumbnail = only_rendition(encode(cmyk, image_format))
    assert thumbnail.mode == "RGB" and rendition.format == "JPEG"
    assert near(thumbnail.getpixel((64, 32)), expected, tolerance=6), thumbnail.getpixel((64, 32))


@pytest.mark.parametrize("image_format", ["JPEG", "TIFF"])
@pytest.mark.parametrize(
    ("ink", "expected"),
    [((0, 0, 0, 0), WHITE), ((255, 0, 0, 0), RED), ((0, 255, 0, 0), GREEN), ((0, 0, 0, 255), BLACK)],
    ids=["paper", "cyan-is-red", "magenta-is-green", "black"],
)
def test_cmyk_with_an_embedded_profile_is_converted_through_it(image_format, ink, expected):
    data = encode(Image.new("CMYK", (200, 100), ink), image_format, icc_profile=cmyk_profile_cyan_is_red())
    rendition, thumbnail = only_rendition(data)
    assert thumbnail.mode == "RGB" and rendition.format == "JPEG" and "icc_profile" not in thumbnail.info
    assert near(thumbnail.getpixel((64, 32)), expected, tolerance=16), thumbnail.getpixel((64, 32))


def _grey_16bit_png(width=256, height=64) -> bytes:
    """A 16-bit grey ramp from 0 to 65535 across, which Pillow opens as mode I;16."""
    row = b"".join(struct.pack(">H", x * 65535 // (width - 1)) for x in range(width))
    return raw_png(width, height, bit_depth=16, colour_type=0, rows=(b"\x00" + row) * height)


def _rgb_16bit_png(width=256, height=64) -> bytes:
    row = b"".join(struct.pack(">HHH", 65535 * x // (width - 1), 32768, 0) for x in range(width))
    return raw_png(width, height, bit_depth=16, colour_type=2, rows=(b"\x00" + row) * height)


def test_16_bit_grey_png_keeps_its_tones_instead_of_going_white():
    rendition, thumbnail = only_rendition(_grey_16bit_png())
    assert rendition.format == "PNG" and thumbnail.mode == "L"
    assert (rendition.width, rendition.height) == (128, 32)
    left, middle, right = (thumbnail.getpixel((x, 16)) for x in (2, 64, 125))
    assert left < 10 and 110 < middle < 145 and right > 245, (left, middle, right)


def test_16_bit_rgb_png_keeps_its_colours():
    rendition, thumbnail = only_rendition(_rgb_16bit_png())
    red, green, blue = thumbnail.convert("RGB").getpixel((64, 16))
    assert 110 < red < 145 and 120 < green < 135 and blue < 5


@pytest.mark.parametrize(
    ("values", "expected_low", "expected_high"),
    [((0.0, 1.0), 0, 255), ((0.0, 255.0), 0, 255), ((-1000.0, 3000.0), 0, 255), ((0.25, 0.5), 64, 128)],
    ids=["unit-range", "byte-range", "arbitrary-range", "dark-unit-range"],
)
def test_float_tiff_becomes_8_bit_without_going_blank(values, expected_low, expected_high):
    image = Image.new("F", (200, 100), values[0])
    image.paste(values[1], (100, 0, 200, 100))
    rendition, thumbnail = only_rendition(encode(image, "TIFF"))
    assert rendition.format == "JPEG"
    low, high = thumbnail.getpixel((10, 32)), thumbnail.getpixel((120, 32))
    assert abs(low - expected_low) <= 8 and abs(high - expected_high) <= 8, (low, high)


def test_palette_png_with_transparency_keeps_it():
    image = Image.new("P", (200, 100), 1)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    image.paste(2, (100, 0, 200, 100))
    data = encode(image, "PNG", transparency=2)
    rendition, thumbnail = only_rendition(data)
    rgba = thumbnail.convert("RGBA")
    assert rendition.format == "PNG"
    assert near(rgba.getpixel((20, 32)), (255, 0, 0, 255)) and rgba.getpixel((110, 32))[3] == 0


def test_grey_with_alpha_keeps_both():
    image = Image.new("LA", (200, 100), (200, 255))
    image.paste((0, 0), (100, 0, 200, 100))
    rendition, thumbnail = only_rendition(encode(image, "PNG"))
    assert thumbnail.mode == "LA"
    assert near(thumbnail.getpixel((20, 32)), (200, 255)) and thumbnail.getpixel((110, 32))[1] == 0


@pytest.mark.parametrize("hidden", [GREEN, BLACK, WHITE], ids=["green", "black", "white"])
@pytest.mark.parametrize("size", [(1600, 1200), (300, 200)], ids=["reduced-first", "resampled-only"])
def test_colour_under_transparent_pixels_never_bleeds_into_edges(size, hidden):
    """Resampling weighs colour by alpha: a red disc on transparent pixels that hide another
    colour keeps pure red edges (straight-alpha averaging would give green, dark or pale fringes)."""
    width, height = size
    image = Image.new("RGBA", size, (*hidden, 0))
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(*RED, 255)
    )

    rendition, thumbnail = only_rendition(encode(image, "PNG"))

    assert rendition.format == "PNG" and thumbnail.mode == "RGBA"
    visible = [pixel for pixel in thumbnail.get_flattened_data() if pixel[3] > 0]
    edges = [pixel for pixel in visible if pixel[3] < 255]
    assert len(edges) > 20  # the disc has a soft, partly transparent rim
    assert [pixel for pixel in visible if pixel[:3] != RED] == []


def test_one_bit_image_becomes_grey():
    image = Image.new("1", (200, 100), 1)
    rendition, thumbnail = only_rendition(encode(image, "BMP"))
    assert rendition.format == "JPEG" and thumbnail.getpixel((64, 32)) >= 250


# --- animation --------------------------------------------------------------------------------

FRAME_COLOURS = [RED, GREEN, BLUE, WHITE, (255, 255, 0)]
DURATIONS = [100, 200, 300, 400, 500]


def _animation(image_format: str, *, loop: int | None = 0, size=(300, 200)) -> bytes:
    frames = [Image.new("RGB", size, colour) for colour in FRAME_COLOURS]
    options = {"save_all": True, "append_images": frames[1:], "duration": DURATIONS}
    if loop is not None:
        options["loop"] = loop
    return encode(frames[0], image_format, **options)


def _frames(image: Image.Image) -> list[tuple[tuple[int, ...], int]]:
    found = []
    for index in range(image.n_frames):
        image.seek(index)
        found.append((image.convert("RGB").getpixel((10, 10)), image.info["duration"]))
    return found


@pytest.mark.parametrize(
    ("image_format", "loop"), [("GIF", 0), ("GIF", 3), ("GIF", None), ("WEBP", 0), ("WEBP", 2)]
)
def test_animation_keeps_frames_durations_and_loop(image_format, loop):
    rendition, thumbnail = only_rendition(_animation(image_format, loop=loop))

    assert rendition.format == thumbnail.format == image_format
    assert thumbnail.size == (128, 85)
    assert thumbnail.n_frames == len(FRAME_COLOURS)
    frames = _frames(thumbnail)
    assert [duration for _, duration in frames] == DURATIONS
    assert all(near(colour, expected) for (colour, _), expected in zip(frames, FRAME_COLOURS, strict=True)), (
        frames
    )
    assert thumbnail.info.get("loop") == loop


@pytest.mark.parametrize("image_format", ["GIF", "WEBP"])
def test_animation_past_the_frame_cap_gives_the_first_frame(image_format):
    rendition, thumbnail = only_rendition(_animation(image_format), max_frames=4)
    assert rendition.format == image_format
    assert getattr(thumbnail, "n_frames", 1) == 1
    assert near(thumbnail.convert("RGB").getpixel((10, 10)), RED)


def test_animated_gif_keeps_transparency_in_every_frame():
    frames = []
    for colour in (RED, GREEN, BLUE):
        frame = Image.new("RGBA", (200, 100), (*colour, 255))
        frame.paste((0, 0, 0, 0), (100, 0, 200, 100))
        frames.append(frame)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0, disposal=2)

    rendition, thumbnail = only_rendition(data)

    assert thumbnail.n_frames == 3
    for index, colour in enumerate((RED, GREEN, BLUE)):
        thumbnail.seek(index)
        rgba = thumbnail.convert("RGBA")
        assert near(rgba.getpixel((20, 32)), (*colour, 255)) and rgba.getpixel((110, 32))[3] == 0


# --- HEIC / AVIF -----------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["HEIF", "AVIF"])
def test_heic_and_avif_photos_become_upright_jpeg_thumbnails(image_format):
    data = encode(quadrants((300, 200)), image_format, quality=90)
    rendition, thumbnail = only_rendition(data)
    assert rendition.format == "JPEG" and thumbnail.size == (128, 85)
    colours = quadrant_colours(thumbnail)
    assert all(
        near(got, want, tolerance=40) for got, want in zip(colours, (RED, GREEN, BLUE, WHITE), strict=True)
    ), colours


def test_heic_thumbnail_comes_from_the_embedded_thumbnail_when_it_is_big_enough(monkeypatch):
    """An iPhone-style HEIC carries a 320 px preview; decoding it instead of the photo is 90x faster."""
    photo = quadrants((1200, 800))
    data = encode(photo, "HEIF", quality=90, thumbnails=[320])
    assert Image.open(io.BytesIO(data)).info["thumbnails"] == [320]
    drafts = []
    real_draft = pillow_heif.as_plugin.HeifImageFile.draft
    monkeypatch.setattr(
        pillow_heif.as_plugin.HeifImageFile,
        "draft",
        lambda self, mode, size: drafts.append(real_draft(self, mode, size)) or drafts[-1],
    )

    (small,) = render(data, boxes=[(128, 128)]).renditions
    (large,) = render(data, boxes=[(400, 400)]).renditions  # bigger than the preview allows: full decode

    assert drafts == [("RGB", (0, 0, 320, 212)), None]

    for rendition, size in ((small, (128, 85)), (large, (400, 267))):
        thumbnail = Image.open(io.BytesIO(rendition.data))
        assert thumbnail.size == size
        colours = quadrant_colours(thumbnail)
        assert all(
            near(got, want, tolerance=40)
            for got, want in zip(colours, (RED, GREEN, BLUE, WHITE), strict=True)
        ), colours


def test_heif_support_loads_on_the_first_heif_file(tmp_path):
    """pillow-heif is imported when a HEIF header comes, not before; other files never load it."""
    inputs = {
        "jpeg": _sample("JPEG"),
        "avif": _sample("AVIF"),  # an ISO media file too, read by Pillow's own plugin
        "text": b"not a picture at all",
        "heic": _sample("HEIF"),
    }
    for name, data in inputs.items():
        (tmp_path / name).write_bytes(data)
    script = (
        "import io, sys\n"
        "from pathlib import Path\n"
        "from thumbnailer import imaging\n"
        "for name in sys.argv[2:]:\n"
        "    data = io.BytesIO((Path(sys.argv[1]) / name).read_bytes())\n"
        "    try:\n"
        "        found = imaging.read_header(data, max_pixels=10**8).format\n"
        "    except imaging.ImageRejected as rejected:\n"
        "        found = rejected.code\n"
        "    print(name, found, 'pillow_heif' in sys.modules)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), *inputs],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "jpeg JPEG False",
        "avif AVIF False",
        "text not_an_image False",
        "heic HEIF True",
    ]


# --- build_archive ----------------------------------------------------------------------------


def _members() -> list[ArchiveMember]:
    original = _sample("JPEG")
    thumbnail = _sample("PNG")
    return [
        ArchiveMember(name="photo.jpg", data=original, width=40, height=30, format="JPEG"),
        ArchiveMember(name="photo_128x128.png", data=thumbnail, width=40, height=30, format="PNG"),
        ArchiveMember(name="photo.bmp", data=_sample("BMP"), width=40, height=30, format="BMP"),
    ]


def _archive(members) -> bytes:
    buffer = io.BytesIO()
    imaging.build_archive(members, buffer)
    return buffer.getvalue()


def test_archive_holds_members_byte_for_byte_and_a_manifest():
    members = _members()
    with zipfile.ZipFile(io.BytesIO(_archive(members))) as archive:
        assert archive.namelist() == ["photo.jpg", "photo_128x128.png", "photo.bmp", "manifest.json"]
        for member in members:
            assert archive.read(member.name) == member.data
        assert [info.compress_type for info in archive.infolist()] == [
            zipfile.ZIP_STORED,
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_DEFLATED,
        ]
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest == {
        "files": [
            {
                "name": m.name,
                "width": m.width,
                "height": m.height,
                "format": m.format,
                "bytes": len(m.data),
                "sha256": hashlib.sha256(m.data).hexdigest(),
            }
            for m in members
        ]
    }


def test_archive_is_byte_for_byte_identical_on_a_rerun():
    assert _archive(_members()) == _archive(_members())


@pytest.mark.parametrize("name", ["../evil.jpg", "dir/photo.jpg", "C:\\photo.jpg", "", "..", "manifest.json"])
def test_archive_refuses_names_that_are_not_plain(name):
    member = ArchiveMember(name=name, data=b"x", width=1, height=1, format="JPEG")
    with pytest.raises(ValueError):
        _archive([member])


def _moving_square_gif(*, transparent_background: bool = False) -> tuple[bytes, list[Image.Image]]:
    """A still background with a square moving across it: later GIF frames hold only what changed."""
    background = quadrants((400, 300), colours=(RED, GREEN, BLUE, WHITE)).convert("RGBA")
    if transparent_background:
        background.paste((0, 0, 0, 0), (0, 150, 400, 300))
    canvases = []
    for index in range(6):
        canvas = background.copy()
        canvas.paste((255, 255, 0, 255), (20 + 60 * index, 120, 80 + 60 * index, 180))
        canvases.append(canvas)
    mode = "RGBA" if transparent_background else "RGB"
    frames = [canvas.convert(mode) for canvas in canvases]
    options = {"disposal": 2} if transparent_background else {}
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0, **options)
    return data, canvases


@pytest.mark.parametrize("transparent_background", [False, True])
def test_animation_resamples_only_what_changed_and_matches_whole_frames(transparent_background):
    """Frames updated from the changed rectangle look like frames resized whole."""
    data, canvases = _moving_square_gif(transparent_background=transparent_background)
    assert Image.open(io.BytesIO(data)).n_frames == 6

    rendition, thumbnail = only_rendition(data)

    assert thumbnail.n_frames == 6 and thumbnail.size == (128, 96)
    for index, canvas in enumerate(canvases):
        thumbnail.seek(index)
        got = thumbnail.convert("RGBA")
        expected = canvas.resize((128, 96), Image.Resampling.LANCZOS)
        square_centre = (round((50 + 60 * index) * 128 / 400), round(150 * 96 / 300))
        assert near(got.getpixel(square_centre), (255, 255, 0, 255)), (index, got.getpixel(square_centre))
        if index:  # where the square was one frame ago is background again
            before = (round((50 + 60 * (index - 1) - 30) * 128 / 400), round(130 * 96 / 300))
            assert near(got.getpixel(before), expected.getpixel(before)), (index, got.getpixel(before))
        opaque_difference = [
            abs(a - b)
            for g, e in zip(got.get_flattened_data(), expected.get_flattened_data(), strict=True)
            if e[3] == 255 and g[3] == 255
            for a, b in zip(g[:3], e[:3], strict=True)
        ]
        assert sum(opaque_difference) / len(opaque_difference) < 4
        transparent = [
            g[3] == 0
            for g, e in zip(got.get_flattened_data(), expected.get_flattened_data(), strict=True)
            if e[3] == 0
        ]
        assert all(transparent)


def test_png_decoded_with_isal_matches_pillows_own_decoder():
    """Every PNG filter and interlacing give the same pixels through the faster inflate."""
    source = photo_like((300, 200))
    for options in ({}, {"optimize": True}, {"compress_level": 1}):
        data = encode(source, "PNG", **options)
        image = Image.open(io.BytesIO(data))
        fastdecode.load_png(image)
        assert image.tobytes() == source.tobytes()
    grey = [[(x * 3 + y * 5) % 256 for x in range(64)] for y in range(32)]
    fast = Image.open(io.BytesIO(_adam7_grey_png(grey)))
    assert fast.info.get("interlace") == 1
    fastdecode.load_png(fast)
    assert fast.tobytes() == bytes(value for row in grey for value in row)


def _adam7_grey_png(grey: list[list[int]]) -> bytes:
    """An 8-bit grey PNG interlaced with Adam7 (Pillow reads these but cannot write them)."""
    height, width = len(grey), len(grey[0])
    passes = (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    )
    rows = b""
    for x0, y0, dx, dy in passes:
        if x0 < width and y0 < height:
            for y in range(y0, height, dy):
                rows += b"\x00" + bytes(grey[y][x] for x in range(x0, width, dx))
    return raw_png(width, height, bit_depth=8, colour_type=0, rows=rows, interlaced=True)


def test_png_without_isal_falls_back_to_pillows_inflate(monkeypatch):
    monkeypatch.setattr(fastdecode, "isal_inflate", lambda: None)
    rendition, thumbnail = only_rendition(encode(quadrants((300, 200)), "PNG"))
    assert rendition.format == "PNG" and thumbnail.size == (128, 85)
    assert all(
        near(got, want)
        for got, want in zip(quadrant_colours(thumbnail), (RED, GREEN, BLUE, WHITE), strict=True)
    )


def _webp_photo(**options) -> bytes:
    return encode(photo_like((1200, 800)), "WEBP", quality=90, **options)


def test_webp_is_shrunk_on_load_by_libwebp_and_looks_like_a_full_decode(monkeypatch):
    data = _webp_photo()
    image = Image.open(io.BytesIO(data))
    shrunk = fastdecode.decode_webp_scaled(image, io.BytesIO(data), (256, 170))
    assert shrunk is not None and shrunk.mode == "RGB" and shrunk.size == (256, 171)

    (fast,) = render(data).renditions
    monkeypatch.setattr(fastdecode, "libwebp", lambda: None)  # as if libwebp could not be loaded
    (plain,) = render(data).renditions

    assert (
        (fast.width, fast.height, fast.format)
        == (plain.width, plain.height, plain.format)
        == (128, 85, "WEBP")
    )
    fast_pixels = Image.open(io.BytesIO(fast.data)).convert("RGB").tobytes()
    plain_pixels = Image.open(io.BytesIO(plain.data)).convert("RGB").tobytes()
    assert sum(abs(a - b) for a, b in zip(fast_pixels, plain_pixels, strict=True)) / len(plain_pixels) < 3


@pytest.mark.parametrize(
    ("data", "wanted"),
    [
        (encode(_rgba_half_transparent().resize((800, 400)), "WEBP"), (256, 128)),  # alpha: Pillow decodes
        (_webp_photo(), (800, 600)),  # less than 2x to gain: Pillow decodes
        (_animation("WEBP"), (64, 64)),
    ],
    ids=["alpha", "little-to-shrink", "animated"],
)
def test_webp_falls_back_to_pillow_where_scaling_would_be_wrong_or_useless(data, wanted):
    image = Image.open(io.BytesIO(data))
    assert fastdecode.decode_webp_scaled(image, io.BytesIO(data), wanted) is None


def test_frames_past_the_cap_are_never_decoded(monkeypatch):
    """With too many frames, only the first is decoded: the rest cost a header scan, not pixels."""
    from PIL import GifImagePlugin

    decoded = []
    real_load_end = GifImagePlugin.GifImageFile.load_end
    monkeypatch.setattr(
        GifImagePlugin.GifImageFile,
        "load_end",
        lambda self: decoded.append(self.tell()) or real_load_end(self),
    )

    rendition, thumbnail = only_rendition(_animation("GIF"), max_frames=4)

    assert decoded == [0]
    assert getattr(thumbnail, "n_frames", 1) == 1 and rendition.format == "GIF"
