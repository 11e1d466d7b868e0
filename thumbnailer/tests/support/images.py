"""Images made in memory for the tests (no files on disk): encoded by Pillow, or written by hand."""

import io
import random
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    """The bytes of `image` saved as `image_format` with Pillow's encoder."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def jpeg_bytes(size=(640, 480), color=(200, 40, 40)) -> bytes:
    return encode(Image.new("RGB", size, color), "JPEG", quality=90)


def photo_like_jpeg(size=(1600, 1200)) -> bytes:
    """A smooth sunset-like picture: gradients in every channel, so resizing shows."""
    red = Image.linear_gradient("L").rotate(180).resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.linear_gradient("L").resize(size)
    return encode(Image.merge("RGB", (red, green, blue)), "JPEG", quality=88)


def png_bytes(size=(300, 200), color=(20, 120, 220, 128)) -> bytes:
    return encode(Image.new("RGBA", size, color), "PNG")


def noisy_png_bytes(size=(300, 300)) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is about 3 bytes a pixel."""
    pixels = random.Random(7).randbytes(size[0] * size[1] * 3)
    return encode(Image.frombytes("RGB", size, pixels), "PNG")


def truncated_jpeg() -> bytes:
    """A JPEG whose header is intact but whose pixel data stops early."""
    whole = jpeg_bytes((800, 600))
    return whole[: len(whole) // 3]


def raw_png(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 2,
    rows: bytes | None = None,
    interlaced: bool = False,
) -> bytes:
    """A PNG written chunk by chunk, for what Pillow cannot save or would refuse (huge or lying headers).

    `rows` are the filtered scanlines as they go into IDAT; without them there is no IDAT at all.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, int(interlaced))
    chunks = chunk(b"IHDR", header)
    if rows is not None:
        chunks += chunk(b"IDAT", zlib.compress(rows))
    return PNG_SIGNATURE + chunks + chunk(b"IEND", b"")


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas (a decompression-bomb shape)."""
    return raw_png(width, height, rows=bytes(64))


def bmp_declaring(width: int, height: int) -> bytes:
    """A 54-byte BMP header claiming a canvas of width x height, with no pixels after it."""
    info = (40).to_bytes(4, "little") + width.to_bytes(4, "little") + height.to_bytes(4, "little")
    return b"BM" + bytes(12) + info + b"\x01\x00\x18\x00" + bytes(24)


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)
