"""Small images made in memory for the tests that go through Django (no files on disk)."""
import io
import random
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def jpeg_bytes(size=(640, 480), color=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def photo_like_jpeg(size=(1600, 1200)) -> bytes:
    """A smooth sunset-like picture: gradients in every channel, so resizing shows."""
    red = Image.linear_gradient("L").rotate(180).resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.linear_gradient("L").resize(size)
    buffer = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def png_bytes(size=(300, 200), color=(20, 120, 220, 128)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas (a decompression-bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def noisy_png_bytes(size=(300, 300)) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is about 3 bytes a pixel."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, random.Random(7).randbytes(size[0] * size[1] * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    """A JPEG whose header is intact but whose pixel data stops early."""
    whole = jpeg_bytes((800, 600))
    return whole[: len(whole) // 3]


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)
