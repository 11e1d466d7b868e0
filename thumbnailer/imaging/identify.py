"""Opening an image: its format, whether we take it, and the facts in its header.

Content decides the format, never the file name. Every problem with the image bytes
themselves comes out as ImageRejected, never as a Pillow error.
"""

from __future__ import annotations

import contextlib
import functools
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from PIL import ExifTags, Image

from .geometry import SWAPS_SIDES

# Pillow format name -> canonical extension of a stored original. Content decides the format:
# Image.open() only ever tries these plugins, so EPS (Ghostscript), PSD, PDF, SVG... are never parsed.
ORIGINAL_EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tiff",
    "ICO": "ico",
    "AVIF": "avif",
    "HEIF": "heic",
}
ACCEPTED_FORMATS = tuple(ORIGINAL_EXTENSIONS)
_ACCEPTED_WITHOUT_HEIF = tuple(name for name in ACCEPTED_FORMATS if name != "HEIF")
ACCEPTED_FORMATS_SENTENCE = "Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image."

# A file that is none of the accepted formats but a known one is refused by name ("TGA files
# are not supported") rather than as "not an image". First by magic number, which parses
# nothing: for formats Pillow must not parse (EPS would run Ghostscript), cannot parse (PDF,
# JPEG XL, SVG) or parses past the header (PSD's layers), and for ICNS, QOI and DDS, whose
# magic number is certain even where Pillow's plugin refuses a variant.
_UNSUPPORTED_SIGNATURES = (
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"icns", "Apple icon (ICNS)"),
    (b"qoif", "QOI"),
    (b"DDS ", "DirectDraw Surface"),
)
# Then by Pillow's own header checks, which look further than a magic number: TGA has none,
# and Netpbm's and PCX's are two bytes that plain text can start with. Only these plugins are
# tried; each reads the header and decodes nothing before load(), which is never called.
# Pillow format name -> what a person calls it. TGA comes last: any header that makes sense
# to its check passes it.
_REFUSED_PILLOW_FORMATS = {
    "PCX": "PCX",
    "PPM": "Netpbm (PBM/PGM/PPM)",
    "SGI": "SGI",
    "SUN": "Sun raster",
    "XBM": "X bitmap (XBM)",
    "XPM": "X pixmap (XPM)",
    "CUR": "Windows cursor (CUR)",
    "WMF": "Windows metafile (WMF/EMF)",
    "TGA": "TGA",
}
_SNIFF_BYTES = 512

# HEIC/HEIF (iPhone photos) is decoded by pillow-heif (libheif + libde265), registered as a Pillow
# opener. AVIF is not: Pillow reads AVIF itself since 11.3 (libavif with dav1d, built into the
# wheel), and pillow-heif 1.x dropped its AVIF support, so Pillow's own plugin is the one to use.
# Importing pillow-heif costs 30-50 ms and most processes never see a HEIC file, so it is
# registered when the first one comes: an ISO media file (`ftyp` box first) whose major brand is
# one pillow-heif's own check accepts (pillow_heif.as_plugin._is_supported_heif).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")

# Pillow's TIFF plugin (size at open, pixels at load) and pillow-heif already apply orientation.
_ORIENTED_BY_DECODER = ("TIFF", "HEIF")

# What Pillow, its plugins and decoders raise for bad bytes (Pillow's own errors derive from
# these). Anything else passes through untouched: a Celery SoftTimeLimitExceeded, a
# KeyboardInterrupt, a NameError in this package.
_DECODER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    ArithmeticError,
    MemoryError,
    RuntimeError,
    AssertionError,
    struct.error,
    zlib.error,
)


class ImageRejected(Exception):
    """Bad input: never retried. code is snake_case for the JSON error, message is a sentence for a person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageHeader:
    """Facts from the header. width and height are the display size (EXIF orientation applied)."""

    format: str
    width: int
    height: int
    frames: int
    extension: str


def read_header(stream: BinaryIO, *, max_pixels: int) -> ImageHeader:
    """Identify the image from its header only, never decoding pixel data. Raises ImageRejected."""
    with rejecting_bad_images():
        image = open_image(stream, max_pixels=max_pixels)
        return header_of(image, exif_orientation(image))


@contextlib.contextmanager
def rejecting_bad_images(*, quiet: bool = False) -> Iterator[None]:
    """Turn whatever Pillow and its decoders raise for bad bytes into ImageRejected.

    quiet also silences Pillow's warnings about odd-but-readable files (bad EXIF, a
    DecompressionBombWarning between Pillow's own limit and ours): our checks decide instead.
    catch_warnings() swaps process-wide state, so only single-threaded callers ask for it (the
    prefork worker and the CLI); the threaded web server's header reads leave warnings alone.
    """
    try:
        with warnings.catch_warnings() if quiet else contextlib.nullcontext():
            if quiet:
                warnings.simplefilter("ignore")
            yield
    except Image.DecompressionBombError as error:
        raise ImageRejected("too_many_pixels", "The image has too many pixels to process.") from error
    except _DECODER_ERRORS as error:
        raise ImageRejected(
            "corrupt_image", "The image is damaged or truncated and could not be read."
        ) from error


def open_image(stream: BinaryIO, *, max_pixels: int) -> Image.Image:
    """Open an image of an accepted format within max_pixels, header only; raise ImageRejected if not."""
    stream.seek(0)
    head = stream.read(_SNIFF_BYTES)
    if not head:
        raise ImageRejected("empty_file", "The file is empty.")
    stream.seek(0)
    try:
        image = Image.open(stream, formats=_formats_to_try(head))
    except Image.UnidentifiedImageError as error:
        refused = _signature_format_name(head) or _pillow_format_name(stream)
        if refused:
            raise ImageRejected(
                "unsupported_format", f"{refused} files are not supported. {ACCEPTED_FORMATS_SENTENCE}"
            ) from error
        raise ImageRejected(
            "not_an_image", f"The file is not an image we can read. {ACCEPTED_FORMATS_SENTENCE}"
        ) from error
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected("corrupt_image", "The image says it has no pixels.")
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
            f"the limit is {max_pixels / 1e6:g} MP.",
        )
    return image


def _formats_to_try(head: bytes) -> tuple[str, ...]:
    """ACCEPTED_FORMATS, registering pillow-heif first if head is HEIF's; without HEIF until then."""
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        _register_heif_opener()
    # Image.open() raises KeyError for a format no plugin has registered.
    return ACCEPTED_FORMATS if "HEIF" in Image.OPEN else _ACCEPTED_WITHOUT_HEIF


@functools.cache
def _register_heif_opener() -> None:
    """Idempotent; changes no decoding option for other users of Pillow."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _signature_format_name(head: bytes) -> str | None:
    for signature, name in _UNSUPPORTED_SIGNATURES:
        if head.startswith(signature):
            return name
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in lowered:
        return "SVG"
    return None


def _pillow_format_name(stream: BinaryIO) -> str | None:
    """The name of a refused format one of Pillow's header checks recognises, or None."""
    for pillow_format, name in _REFUSED_PILLOW_FORMATS.items():
        # One plugin at a time, so a plugin that fails loudly on a file that is not its
        # format (with a ValueError, say) does not stop the next one from trying.
        try:
            Image.open(stream, formats=(pillow_format,))
        except Image.DecompressionBombError:
            return name  # recognised, with a huge canvas besides: the format is the answer
        except _DECODER_ERRORS:
            continue
        return name
    return None


def _format_of(image: Image.Image) -> str:
    # A JPEG carrying a second picture (many phone cameras) opens as MPO; it is still a JPEG.
    return "JPEG" if image.format == "MPO" else str(image.format)


def exif_orientation(image: Image.Image) -> int:
    """EXIF orientation 1-8 still to apply (1 if absent or invalid), without decoding pixels."""
    if image.format in _ORIENTED_BY_DECODER:
        return 1
    if image.format == "PNG" and "exif" not in image.info and image.tile:
        # Before load() (tile still pending), PngImageFile.getexif() would decode the whole
        # image to look for an eXIf chunk after the pixel data.
        return 1
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a broken EXIF block is not a broken image
        return 1
    return value if value in range(1, 9) else 1


def header_of(image: Image.Image, orientation: int) -> ImageHeader:
    """The header facts of an opened image, at its display size for the given EXIF orientation."""
    image_format = _format_of(image)
    width, height = image.size
    if orientation in SWAPS_SIDES:
        width, height = height, width
    return ImageHeader(
        format=image_format,
        width=width,
        height=height,
        frames=max(1, int(getattr(image, "n_frames", 1))),
        extension=ORIGINAL_EXTENSIONS[image_format],
    )
