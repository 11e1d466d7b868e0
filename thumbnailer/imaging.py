"""The image pipeline: identify, decode (shrink-on-load), orient, convert, resize, encode, zip.

Pure: Pillow, pillow-heif, the faster decoders in fastdecode.py and the standard library; never
Django or Celery. Functions take file objects and return bytes and facts, so the worker, the CLI and the
tests share one pipeline.
Every problem with the image bytes themselves comes out as `ImageRejected`, never as a Pillow error.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import pillow_heif
from PIL import ExifTags, Image, ImageChops, ImageCms

from . import fastdecode

# HEIC/HEIF (iPhone photos) is decoded by pillow-heif (libheif + libde265), registered as a Pillow
# opener. AVIF is not: Pillow reads AVIF itself since 11.3 (libavif with dav1d, built into the
# wheel), and pillow-heif 1.x dropped its AVIF support, so Pillow's own plugin is the one to use.
# Registering an opener is idempotent and changes no decoding option for other users of Pillow.
pillow_heif.register_heif_opener()

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

# Output format follows the input family; anything else becomes PNG (with alpha) or JPEG.
_SAME_FAMILY_OUTPUT = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "GIF"}
OUTPUT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
ANIMATED_FORMATS = ("GIF", "WEBP")

# A thumbnail's visual quality is settled by the resampling filter; these keep files small
# without visible artefacts at thumbnail sizes.
JPEG_QUALITY = 85
WEBP_QUALITY = 80

# reduce() by an integer factor (box filter, very fast) until the image is at most this many
# times the target, then resample with Lanczos. 2.0 is Pillow's thumbnail() default: the
# result is indistinguishable from a full Lanczos pass at thumbnail sizes, several times faster.
REDUCING_GAP = 2.0

# Pillow hands an image's memory back after use, and large blocks go back to the OS, so the
# next image page-faults its memory in again: 40 of the 145 ms of a 12 MP PNG. Up to this
# many 16 MiB blocks are kept for reuse in a process that makes thumbnails (at most 64 MiB).
REUSED_IMAGE_BLOCKS = 4

# Frames x canvas pixels decoded for one animated thumbnail. Past it, the first frame only,
# so a 300-frame animation on a huge canvas cannot hold a worker for minutes.
MAX_ANIMATION_PIXELS = 400_000_000

_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = (5, 6, 7, 8)
# Pillow's TIFF plugin (size at open, pixels at load) and pillow-heif already apply orientation.
_ORIENTED_BY_DECODER = ("TIFF", "HEIF")

# Magic numbers of image formats that are deliberately refused, so the person is told
# "not supported" instead of "not an image".
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
_SNIFF_BYTES = 512
ACCEPTED_FORMATS_SENTENCE = "Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image."


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


@dataclass(frozen=True)
class Rendition:
    """One thumbnail: fits inside box, aspect kept, never upscaled, never 0 px; display size."""

    box: tuple[int, int]
    width: int
    height: int
    format: str
    extension: str
    data: bytes


@dataclass(frozen=True)
class ThumbnailSet:
    original: ImageHeader
    renditions: list[Rendition]


@dataclass(frozen=True)
class ArchiveMember:
    name: str
    data: bytes
    width: int
    height: int
    format: str


# ---------------------------------------------------------------------------------------------
# Public entry points


def read_header(stream: BinaryIO, *, max_pixels: int) -> ImageHeader:
    """Identify the image from its header only, never decoding pixel data. Raises ImageRejected."""
    with _rejecting_bad_images():
        image = _open(stream, max_pixels=max_pixels)
        return _header_of(image, _orientation(image))


def make_renditions(
    source: BinaryIO,
    *,
    boxes: Sequence[tuple[int, int]],
    max_pixels: int,
    max_frames: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> ThumbnailSet:
    """Decode once (shrink-on-load) and produce one rendition per box, in the order given."""
    if not boxes:
        raise ValueError("make_renditions needs at least one box.")
    boxes = [(int(width), int(height)) for width, height in boxes]
    if any(width < 1 or height < 1 for width, height in boxes):
        raise ValueError(f"Every box needs two positive sides, got {boxes}.")
    _reuse_image_memory()
    # Read before decoding, outside the error translation: a storage or network error stays
    # an OSError the worker can retry, never a "corrupt image". Decoding from memory is faster.
    if not isinstance(source, io.BytesIO):
        source.seek(0)
        source = io.BytesIO(source.read())

    with _rejecting_bad_images(quiet=True):
        image = _open(source, max_pixels=max_pixels)
        orientation = _orientation(image)
        header = _header_of(image, orientation)
        if _animates(image, header, max_frames=max_frames):
            produced = _animated_renditions(image, header, boxes, orientation)
        else:
            produced = _still_renditions(image, source, header, boxes, orientation)
    renditions: list[Rendition] = []
    while len(renditions) < len(boxes):
        with _rejecting_bad_images(quiet=True):
            renditions.append(next(produced))
        # Outside the translation: a failing progress report (the broker, say) is not the image's fault.
        if on_progress is not None:
            on_progress(len(renditions), len(boxes))
    return ThumbnailSet(original=header, renditions=renditions)


def _reuse_image_memory() -> None:
    """Let Pillow keep freed image blocks (process-wide; only raised, never lowered)."""
    if Image.core.get_blocks_max() < REUSED_IMAGE_BLOCKS:
        Image.core.set_blocks_max(REUSED_IMAGE_BLOCKS)


def build_archive(members: Sequence[ArchiveMember], out: BinaryIO) -> None:
    """Write a deterministic zip of the members plus manifest.json (name, size, format, bytes, sha256)."""
    names = [member.name for member in members]
    for name in names:
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"Archive member names must be plain file names, got {name!r}.")
    if len(set(names)) != len(names) or MANIFEST_NAME in names:
        raise ValueError(f"Archive member names must be unique and not {MANIFEST_NAME}: {names}.")

    manifest = {
        "files": [
            {
                "name": member.name,
                "width": member.width,
                "height": member.height,
                "format": member.format,
                "bytes": len(member.data),
                "sha256": hashlib.sha256(member.data).hexdigest(),
            }
            for member in members
        ]
    }
    manifest_data = (json.dumps(manifest, indent=2) + "\n").encode()

    with zipfile.ZipFile(out, "w") as archive:
        for member in members:
            compressed = member.format.upper() in _ALREADY_COMPRESSED
            _write_member(archive, member.name, member.data, compressed=compressed)
        _write_member(archive, MANIFEST_NAME, manifest_data, compressed=False)


MANIFEST_NAME = "manifest.json"
# Deflating JPEG/PNG/WebP/GIF/AVIF/HEIF gains nothing and costs time: they are stored as is.
_ALREADY_COMPRESSED = {"JPEG", "JPG", "PNG", "WEBP", "GIF", "AVIF", "HEIF", "HEIC"}
# A fixed timestamp and permissions make a rerun produce the same bytes (idempotent tasks).
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes, *, compressed: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, whatever the machine, so the bytes do not depend on it
    if compressed:
        archive.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    else:
        archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)


# ---------------------------------------------------------------------------------------------
# Opening and header facts


# What Pillow, its plugins and decoders raise for bad bytes (Pillow's own errors derive from
# these). Anything else passes through untouched: a Celery SoftTimeLimitExceeded, a
# KeyboardInterrupt, a NameError in this module.
_DECODER_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, AttributeError,
    ArithmeticError, MemoryError, RuntimeError, AssertionError, struct.error, zlib.error,
) + fastdecode.INFLATE_ERRORS


@contextlib.contextmanager
def _rejecting_bad_images(*, quiet: bool = False) -> Iterator[None]:
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


def _open(stream: BinaryIO, *, max_pixels: int) -> Image.Image:
    stream.seek(0)
    head = stream.read(_SNIFF_BYTES)
    if not head:
        raise ImageRejected("empty_file", "The file is empty.")
    stream.seek(0)
    try:
        image = Image.open(stream, formats=ACCEPTED_FORMATS)
    except Image.UnidentifiedImageError as error:
        refused = _refused_format_name(head)
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


def _refused_format_name(head: bytes) -> str | None:
    for signature, name in _UNSUPPORTED_SIGNATURES:
        if head.startswith(signature):
            return name
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in lowered:
        return "SVG"
    return None


def _format_of(image: Image.Image) -> str:
    # A JPEG carrying a second picture (many phone cameras) opens as MPO; it is still a JPEG.
    return "JPEG" if image.format == "MPO" else str(image.format)


def _orientation(image: Image.Image) -> int:
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


def _header_of(image: Image.Image, orientation: int) -> ImageHeader:
    image_format = _format_of(image)
    width, height = image.size
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    return ImageHeader(
        format=image_format,
        width=width,
        height=height,
        frames=max(1, int(getattr(image, "n_frames", 1))),
        extension=ORIGINAL_EXTENSIONS[image_format],
    )


# ---------------------------------------------------------------------------------------------
# Geometry


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


def _stored_size(display_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (display_size[1], display_size[0]) if orientation in _SWAPS_SIDES else display_size


# ---------------------------------------------------------------------------------------------
# Still images


def _still_renditions(
    image: Image.Image,
    source: BinaryIO,
    header: ImageHeader,
    boxes: list[tuple[int, int]],
    orientation: int,
) -> Iterator[Rendition]:
    """Decode once, then resize, colour-convert, orient and encode for each box in turn."""
    display_size = (header.width, header.height)
    targets = [fit_within(display_size, box) for box in boxes]
    largest = _stored_size(max(targets, key=lambda size: size[0] * size[1]), orientation)
    icc_profile = image.info.get("icc_profile")
    working = _decode_shrunk(image, source, header.format, largest)
    output_format = _output_format(header.format, has_alpha=_has_alpha(working))

    for box, target in zip(boxes, targets):
        thumbnail = _resize(working, _stored_size(target, orientation))
        thumbnail = _to_srgb(thumbnail, icc_profile)
        thumbnail = _orient(thumbnail, orientation)
        yield _rendition(box, thumbnail.size, output_format, _encode_still(thumbnail, output_format))


def _decode_shrunk(image: Image.Image, source: BinaryIO, image_format: str, largest: tuple[int, int]) -> Image.Image:
    """Decode once, as small as still gives REDUCING_GAP times the largest target (stored orientation)."""
    wanted = (int(largest[0] * REDUCING_GAP), int(largest[1] * REDUCING_GAP))
    if image_format in ("JPEG", "HEIF"):
        # JPEG: DCT scaling, libjpeg decodes at 1/2, 1/4 or 1/8 size, so the full-size image
        # never exists. HEIF: pillow-heif decodes the embedded thumbnail instead (iPhones
        # store a 320x240 one) when it is a true scaled copy (same crop, rotation, profile):
        # 10 ms instead of 900 ms for a 12 MP HEVC grid.
        image.draft(None, wanted)
    elif image_format == "PNG":
        fastdecode.load_png(image)
    elif image_format == "WEBP":
        shrunk = fastdecode.decode_webp_scaled(image, source, wanted)
        if shrunk is not None:
            return shrunk
    return _resizable(image)


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image.copy()
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def _resizable(image: Image.Image) -> Image.Image:
    """Convert to an 8-bit mode that resamples well: L, LA, RGB, RGBA or CMYK."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        return _to_8bit_grey(image)
    if mode == "LAB":
        return ImageCms.applyTransform(image, _lab_to_srgb())
    if mode in ("La", "RGBa"):
        return image.convert({"La": "LA", "RGBa": "RGBA"}[mode])
    return image.convert("RGBA" if "A" in mode else "RGB")


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey to 8-bit L by scaling the value range, not clipping it.

    A plain convert("L") clips every value above 255 to white, which is how a 16-bit PNG
    becomes a blank thumbnail. 16-bit data uses its full range (v / 257); 32-bit integers and
    floats are scaled by what they hold, as there is no standard range.
    """
    if image.mode.startswith("I;16"):
        return image.convert("I").point(lambda value: value / 257).convert("L")
    if image.mode == "I":
        low, high = image.getextrema()
        if low >= 0 and high <= 255:
            return image.convert("L")
        if low >= 0 and high <= 65535:
            return image.point(lambda value: value / 257).convert("L")
    else:  # "F"
        low, high = image.getextrema()
        if low >= 0 and high <= 1:
            return image.point(lambda value: value * 255).convert("L")
        if low >= 0 and high <= 255:
            return image.convert("L")
    span = (high - low) or 1
    return image.point(lambda value: (value - low) * 255 / span).convert("L")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("LA", "RGBA", "PA")


def _output_format(source_format: str, *, has_alpha: bool) -> str:
    if source_format in _SAME_FAMILY_OUTPUT:
        return _SAME_FAMILY_OUTPUT[source_format]
    return "PNG" if has_alpha else "JPEG"


# ---------------------------------------------------------------------------------------------
# Colour


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), _srgb_profile(), "LAB", "RGB")


@functools.lru_cache(maxsize=32)
def _transform_to_srgb(icc_profile: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    return ImageCms.buildTransform(
        source_profile, _srgb_profile(), in_mode, out_mode, ImageCms.Intent.PERCEPTUAL
    )


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert from the embedded ICC profile (or CMYK) to sRGB; done at thumbnail size, so cheap."""
    if image.mode not in ("RGB", "RGBA", "CMYK"):
        # Grey images are left as they are: grey ICC profiles are almost always a gamma
        # close to sRGB's, and lcms cannot carry an alpha band through a grey transform.
        return image
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    if icc_profile:
        try:
            converted = ImageCms.applyTransform(
                image, _transform_to_srgb(icc_profile, image.mode, out_mode)
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a broken or mismatched profile: fall back to the plain numbers
        if converted is not None:
            if image.mode == "RGBA" and converted.mode == "RGBA":
                converted.putalpha(image.getchannel("A"))
            return converted
    if image.mode == "CMYK":
        return _cmyk_to_srgb_without_profile(image)
    return image


# What solid process inks look like on coated paper, in sRGB (the usual SWOP/FOGRA swatches).
# Pillow's own CMYK->RGB treats cyan as pure (0, 255, 255), far brighter than any print.
_PROCESS_INKS = ((0, 174, 239), (236, 0, 140), (255, 242, 0), (35, 31, 32))


@functools.cache
def _ink_curves() -> tuple[tuple[list[int], ...], ...]:
    """Per output band, per ink: how much light is left at each ink amount 0-255."""
    return tuple(
        tuple([round(255 - amount * (255 - ink[band]) / 255) for amount in range(256)] for ink in _PROCESS_INKS)
        for band in range(3)
    )


def _cmyk_to_srgb_without_profile(image: Image.Image) -> Image.Image:
    """CMYK with no embedded profile, rendered as overprinted process inks (a multiply model).

    Without a profile the numbers still mean ink on paper; each ink filters the light the
    others leave, so pure cyan shows as printed cyan (0, 174, 239) and C+M+Y+K as near black.
    Done on the thumbnail, so the lookup-table passes cost a fraction of a millisecond.
    """
    inks = image.split()
    bands = []
    for curves in _ink_curves():
        band = inks[0].point(curves[0])
        for ink, curve in zip(inks[1:], curves[1:]):
            band = ImageChops.multiply(band, ink.point(curve))
        bands.append(band)
    return Image.merge("RGB", bands)


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION_TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


# ---------------------------------------------------------------------------------------------
# Encoding


def _rendition(box: tuple[int, int], size: tuple[int, int], output_format: str, data: bytes) -> Rendition:
    return Rendition(
        box=box,
        width=size[0],
        height=size[1],
        format=output_format,
        extension=OUTPUT_EXTENSIONS[output_format],
        data=data,
    )


def _encode_still(image: Image.Image, output_format: str) -> bytes:
    if output_format == "JPEG":
        image = _flatten_on_white(image)
    elif output_format == "GIF":
        (image,) = _to_gif_frames([image])
    elif image.mode == "CMYK":
        image = image.convert("RGB")
    return _save(image, output_format)


def _save(image: Image.Image, output_format: str, **options: object) -> bytes:
    # info carries the source's EXIF, XMP, ICC profile and comments; none of it may reach a
    # thumbnail (GPS privacy, and the pixels are sRGB now), so the encoder sees only options.
    image.info = {key: value for key, value in image.info.items() if key == "transparency"}
    buffer = io.BytesIO()
    image.save(buffer, output_format, **_ENCODER_OPTIONS[output_format], **options)
    return buffer.getvalue()


_ENCODER_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": JPEG_QUALITY, "optimize": True},
    "PNG": {"compress_level": 6},
    "WEBP": {"quality": WEBP_QUALITY, "method": 4},
    # Pillow's palette optimisation rescans and remaps every frame to drop unused colours:
    # 20% of an animated thumbnail's time for 8% fewer bytes on a shared 256-colour palette.
    "GIF": {"optimize": False},
}


def _flatten_on_white(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA"):
        background = Image.new(image.mode[:-1], image.size, 255 if image.mode == "LA" else (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


# GIF has one transparent palette entry and no partial transparency: pixels under half
# opacity become the transparent index, the others keep their colour.
_GIF_TRANSPARENT_INDEX = 255
# Pixels the shared palette of an animation is chosen from: every frame, shrunk to fit.
_PALETTE_SAMPLE_PIXELS = 65_536


def _to_gif_frames(frames: list[Image.Image]) -> list[Image.Image]:
    """Frames in one shared 8-bit palette, with a transparent index if they have alpha.

    One palette for the whole animation: no local colour tables (fewer bytes) and no colour
    shimmer between frames; mapping a frame to a known palette takes 0.02 ms where choosing
    its own takes 0.3. Fast octree is as close as median cut at these sizes (mean error 4.3
    vs 4.2 levels) and 40x faster. No dithering: it costs bytes and makes animations shimmer.
    """
    has_alpha = _has_alpha(frames[0])
    rgb_frames = [frame.convert("RGB") for frame in frames]
    palette = _palette_sample(rgb_frames).quantize(
        255 if has_alpha else 256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    if has_alpha:  # 255 colours chosen, so nothing maps to the transparent index
        colours = (palette.getpalette() or [])[: 3 * 255]
        palette.putpalette(colours + [0] * (3 * 256 - len(colours)))
    paletted = []
    for frame, rgb in zip(frames, rgb_frames):
        mapped = rgb.quantize(palette=palette, dither=Image.Dither.NONE)
        if has_alpha:
            transparent = frame.getchannel("A").point(lambda alpha: 255 if alpha < 128 else 0)
            mapped.paste(_GIF_TRANSPARENT_INDEX, mask=transparent)
            mapped.info["transparency"] = _GIF_TRANSPARENT_INDEX
        paletted.append(mapped)
    return paletted


def _palette_sample(frames: list[Image.Image]) -> Image.Image:
    """All frames side by side in one image, each shrunk so the whole stays small."""
    width, height = frames[0].size
    factor = max(1, math.ceil(math.sqrt(len(frames) * width * height / _PALETTE_SAMPLE_PIXELS)))
    if len(frames) == 1:
        return frames[0] if factor == 1 else frames[0].reduce(factor)
    tiles = [frame.reduce(factor) if factor > 1 else frame for frame in frames]
    tile_width, tile_height = tiles[0].size
    sample = Image.new("RGB", (tile_width, tile_height * len(tiles)))
    for index, tile in enumerate(tiles):
        sample.paste(tile, (0, index * tile_height))
    return sample


# ---------------------------------------------------------------------------------------------
# Animations


def _animates(image: Image.Image, header: ImageHeader, *, max_frames: int) -> bool:
    return (
        header.format in ANIMATED_FORMATS
        and 1 < header.frames <= max_frames
        and header.frames * header.width * header.height <= MAX_ANIMATION_PIXELS
    )


def _animated_renditions(
    image: Image.Image,
    header: ImageHeader,
    boxes: list[tuple[int, int]],
    orientation: int,
) -> Iterator[Rendition]:
    """Every frame decoded once (Pillow composites each onto the canvas), resized for every box.

    Most animations change a small part of the canvas per frame, and a GIF says which (the
    frame's rectangle). Only the thumbnail pixels that rectangle and the previous one can
    reach are resampled again, so the time follows what changes, not the canvas size.
    """
    display_size = (header.width, header.height)
    stored_targets = [_stored_size(fit_within(display_size, box), orientation) for box in boxes]
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
        frame = _resizable(image)
        if frame.size != canvas_size:  # a GIF frame past the canvas made Pillow grow it
            frame = frame.crop((0, 0, *canvas_size))
        extent = getattr(image, "dispose_extent", None) if header.format == "GIF" else None
        changed = _union(extent, previous_extent) if index and extent and previous_extent else None
        previous_extent = extent
        for thumbnails, target in zip(thumbnails_per_box, stored_targets):
            previous = thumbnails[-1] if thumbnails else None
            if changed is None or previous is None or previous.mode != frame.mode:
                thumbnails.append(_resize(frame, target))
            else:
                thumbnails.append(_resize_changed_part(frame, previous, changed))

    if any(_has_alpha(thumbnail) for thumbnail in thumbnails_per_box[0]):  # one mode for the whole animation
        thumbnails_per_box = [[frame.convert("RGBA") for frame in frames] for frames in thumbnails_per_box]
    for box, thumbnails in zip(boxes, thumbnails_per_box):
        frames = [_orient(thumbnail, orientation) for thumbnail in thumbnails]
        data = _encode_animation(frames, header.format, durations=durations, loop=loop)
        yield _rendition(box, frames[0].size, header.format, data)


# Lanczos reaches 3 output pixels either side when shrinking, reduce() one more.
_RESAMPLE_REACH = 4


def _resize_changed_part(frame: Image.Image, previous: Image.Image, changed: tuple[int, int, int, int]) -> Image.Image:
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
        patch = frame.resize((right - left, bottom - top), Image.Resampling.LANCZOS, box=source_box,
                             reducing_gap=REDUCING_GAP)
        thumbnail.paste(patch, (left, top))
    return thumbnail


def _union(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return min(first[0], second[0]), min(first[1], second[1]), max(first[2], second[2]), max(first[3], second[3])


def _encode_animation(
    frames: list[Image.Image], output_format: str, *, durations: list[int], loop: int | None
) -> bytes:
    options: dict[str, object] = {"save_all": True, "duration": durations}
    if loop is not None:  # a GIF without a loop count plays once; keep that
        options["loop"] = loop
    if output_format == "GIF":
        if _has_alpha(frames[0]):
            # Restore to background between frames: each frame is a whole composited picture,
            # and its transparent pixels must not show the previous frame through.
            options["disposal"] = 2
        frames = _to_gif_frames(frames)
    for frame in frames:
        frame.info = {key: value for key, value in frame.info.items() if key == "transparency"}
    options["append_images"] = frames[1:]
    return _save(frames[0], output_format, **options)
