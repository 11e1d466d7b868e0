"""The image pipeline: identify, decode (shrink-on-load), orient, convert, resize, encode, zip.

Pure: Pillow, pillow-heif, isal and the standard library; never Django or Celery. Functions take
file objects and return bytes and facts, so the worker, the CLI and the tests share one pipeline.
Every problem with the image bytes themselves comes out as `ImageRejected`, never as a Pillow error.

Each step is a module of its own, like the processors of easy-thumbnails:
    identify    opening, the accepted formats, refused formats by name, header facts, ImageRejected
    geometry    the size that fits a box, EXIF orientation, the Lanczos resize
    colour      any mode to 8-bit; ICC profiles and CMYK to sRGB
    encode      JPEG/PNG/WebP/GIF bytes: encoder options, flattening, the shared GIF palette
    animation   animated GIF and WebP renditions
    fastdecode  faster PNG (ISA-L) and shrink-on-load WebP (libwebp) decoding, with fallbacks
    pipeline    make_renditions: decode once, then one rendition per box
    archive     the thumbnail files and the zip with manifest.json
Other code imports from the package, never from the modules (tests may reach into them).
"""

from .archive import ArchiveMember, Package, ThumbnailFile, build_archive, package_renditions
from .encode import Rendition
from .geometry import fit_within
from .identify import ACCEPTED_FORMATS, ORIGINAL_EXTENSIONS, ImageHeader, ImageRejected, read_header
from .options import DEFAULT_OPTIONS, FORMATS, MODES, ThumbnailOptions
from .pipeline import ThumbnailSet, make_renditions

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_OPTIONS",
    "FORMATS",
    "MODES",
    "ThumbnailOptions",
    "ORIGINAL_EXTENSIONS",
    "ArchiveMember",
    "ImageHeader",
    "ImageRejected",
    "Package",
    "Rendition",
    "ThumbnailFile",
    "ThumbnailSet",
    "build_archive",
    "fit_within",
    "make_renditions",
    "package_renditions",
    "read_header",
]
