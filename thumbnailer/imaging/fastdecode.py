"""Faster decoders for two formats, each falling back to Pillow's own when unavailable.

Pure: Pillow, isal and the standard library. A module of its own because both reach
below Pillow's public API (a PNG read hook, libwebp through ctypes); everything else in the
pipeline uses Pillow as documented. Each is measured in bench/README.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import struct
import zlib
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

from PIL import Image

# Inflated bytes handed to Pillow per read: big enough to amortise the calls, small enough
# to stay in cache between inflating and unfiltering.
_PNG_READ_BYTES = 256 * 1024
_STORED_BLOCK = 65535


@functools.cache
def isal_inflate() -> ModuleType | None:
    """ISA-L's zlib module (inflate twice as fast as zlib on photo PNGs), or None without isal.

    Imported on the first PNG, not with the package: most processes that start the pipeline
    (the CLI on a folder of JPEGs) never decode a PNG.
    """
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is in requirements.txt
        return None
    return isal_zlib


def load_png(image: Image.Image) -> None:
    """Decode a PNG with Pillow's decoder minus its own inflate, the larger half of the work.

    Pillow's decoder does inflate and unfilter in one pass over the IDAT stream. Here ISA-L
    inflates the IDAT stream as it is read (about 2x faster than zlib on photo content) and
    hands Pillow the same bytes as deflate *stored* blocks, which its inflate only copies;
    Pillow still unfilters, de-interlaces and checks the size, streaming, so memory use is
    unchanged. Pillow stops at the last row, so the stream needs no trailing checksum.
    """
    isal_zlib = isal_inflate()
    if isal_zlib is None or not image.tile or not hasattr(image, "load_read"):
        return
    read_idat = image.load_read
    inflater = isal_zlib.decompressobj()
    started = False

    def load_read(read_bytes: int) -> bytes:
        nonlocal started
        inflated = b""
        while not inflated:
            compressed = read_idat(_PNG_READ_BYTES)
            if not compressed:
                return b""  # Pillow reports the truncation
            try:
                inflated = inflater.decompress(compressed)
            except isal_zlib.error as error:  # as zlib's error, which identify.py knows as bad bytes
                raise zlib.error(str(error)) from error
        view = memoryview(inflated)
        pieces = [] if started else [b"\x78\x01"]  # zlib header: deflate, no preset dictionary
        started = True
        for offset in range(0, len(view), _STORED_BLOCK):
            block = view[offset : offset + _STORED_BLOCK]
            # A stored block: not final, then its length and the length's complement.
            pieces.append(struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF))
            pieces.append(block)
        return b"".join(pieces)

    image.load_read = load_read
    try:
        image.load()
    finally:
        del image.load_read  # the closure refers to the image: a cycle would keep its pixels alive


# WebP shrink-on-load. Pillow decodes WebP at full size only; libwebp itself can scale while
# converting from YUV (WebPDecoderOptions.use_scaling, what libvips uses): 11 ms instead of
# 24 ms for 2 MP. Pillow ships libwebp, so it is driven through ctypes with the decoder
# structs of decoder ABI 2.x (stable since libwebp 0.5); its init call refuses any other ABI;
# any doubt (library not found, alpha, animation, a failed decode) falls back to Pillow.
_WEBP_DECODER_ABI_VERSION = 0x0209
_WEBP_MODE_RGB = 0


class _WebPFeatures(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int) for name in ("width", "height", "has_alpha", "has_animation", "format")
    ] + [("pad", ctypes.c_uint32 * 5)]


class _WebPRGBABuffer(ctypes.Structure):
    _fields_ = [("rgba", ctypes.c_void_p), ("stride", ctypes.c_int), ("size", ctypes.c_size_t)]


class _WebPYUVABuffer(ctypes.Structure):
    _fields_ = (
        [(name, ctypes.c_void_p) for name in ("y", "u", "v", "a")]
        + [(name, ctypes.c_int) for name in ("y_stride", "u_stride", "v_stride", "a_stride")]
        + [(name, ctypes.c_size_t) for name in ("y_size", "u_size", "v_size", "a_size")]
    )


class _WebPOutputUnion(ctypes.Union):
    _fields_ = [("RGBA", _WebPRGBABuffer), ("YUVA", _WebPYUVABuffer)]


class _WebPDecBuffer(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("colorspace", "width", "height", "is_external_memory")] + [
        ("u", _WebPOutputUnion),
        ("pad", ctypes.c_uint32 * 4),
        ("private_memory", ctypes.c_void_p),
    ]


class _WebPDecoderOptions(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int)
        for name in (
            "bypass_filtering",
            "no_fancy_upsampling",
            "use_cropping",
            "crop_left",
            "crop_top",
            "crop_width",
            "crop_height",
            "use_scaling",
            "scaled_width",
            "scaled_height",
            "use_threads",
            "dithering_strength",
            "flip",
            "alpha_dithering_strength",
        )
    ] + [("pad", ctypes.c_uint32 * 5)]


class _WebPDecoderConfig(ctypes.Structure):
    _fields_ = [("input", _WebPFeatures), ("output", _WebPDecBuffer), ("options", _WebPDecoderOptions)]


@functools.cache
def libwebp() -> ctypes.CDLL | None:
    """The libwebp Pillow itself uses (its wheel's copy), else the system's; None if neither loads."""
    bundled = Path(Image.__file__).resolve().parent.parent / "pillow.libs"
    candidates = [str(path) for path in sorted(bundled.glob("libwebp-*.so*"))] + [
        ctypes.util.find_library("webp")
    ]
    for candidate in filter(None, candidates):
        try:
            library = ctypes.CDLL(candidate)
            library.WebPInitDecoderConfigInternal.argtypes = [
                ctypes.POINTER(_WebPDecoderConfig),
                ctypes.c_int,
            ]
            library.WebPGetFeaturesInternal.argtypes = [
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.POINTER(_WebPFeatures),
                ctypes.c_int,
            ]
            library.WebPDecode.argtypes = [
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.POINTER(_WebPDecoderConfig),
            ]
        except (OSError, AttributeError):
            continue
        return library
    return None


def decode_webp_scaled(image: Image.Image, source: BinaryIO, wanted: tuple[int, int]) -> Image.Image | None:
    """A still, opaque WebP decoded straight to at least `wanted`, or None to let Pillow decode it.

    Only opaque images: libwebp averages colour without weighting by alpha, which would let
    the hidden colour of transparent pixels bleed into the edges.
    """
    width, height = image.size
    shrink = min(width / wanted[0], height / wanted[1])
    library = libwebp()
    if shrink < 2 or library is None or getattr(image, "n_frames", 1) != 1 or image.mode != "RGB":
        return None
    scaled = (max(1, math.ceil(width / shrink)), max(1, math.ceil(height / shrink)))
    source.seek(0)
    data = source.read()
    config = _WebPDecoderConfig()
    if not library.WebPInitDecoderConfigInternal(ctypes.byref(config), _WEBP_DECODER_ABI_VERSION):
        return None
    if library.WebPGetFeaturesInternal(
        data, len(data), ctypes.byref(config.input), _WEBP_DECODER_ABI_VERSION
    ):
        return None
    if (
        config.input.has_alpha
        or config.input.has_animation
        or (config.input.width, config.input.height) != image.size
    ):
        return None
    pixels = ctypes.create_string_buffer(scaled[0] * scaled[1] * 3)
    config.options.use_scaling = 1
    config.options.scaled_width, config.options.scaled_height = scaled
    config.output.colorspace = _WEBP_MODE_RGB
    config.output.is_external_memory = 1
    config.output.u.RGBA.rgba = ctypes.cast(pixels, ctypes.c_void_p)
    config.output.u.RGBA.stride = scaled[0] * 3
    config.output.u.RGBA.size = len(pixels)
    if library.WebPDecode(data, len(data), ctypes.byref(config)) != 0:  # VP8_STATUS_OK
        return None  # Pillow's decoder then says what is wrong
    return Image.frombuffer("RGB", scaled, pixels, "raw", "RGB", 0, 1)
