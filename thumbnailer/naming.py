"""File names for stored uploads and outputs. Pure: standard library only.

A client's file name is never trusted: it may carry path parts, control characters,
a misleading extension or thousands of characters. These helpers turn it into a plain,
bounded name that is still recognisable in a download.
"""

import re
import unicodedata

MAX_NAME_LENGTH = 100
MAX_STEM_LENGTH = 60
FALLBACK_STEM = "image"

# Anything but letters, digits, dot, dash and underscore becomes an underscore, so
# names survive every filesystem, URL and zip tool without quoting.
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_upload_name(client_name: str | None, *, extension: str) -> str:
    """Return `<stem>.<extension>` from the client's name, with the extension decided by content."""
    return f"{safe_stem(client_name)}.{extension}"


def safe_stem(client_name: str | None) -> str:
    """Return a plain, bounded stem of the client's file name (no path, no dots, no controls)."""
    name = (client_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    # NFKD then ASCII keeps "Café" readable as "Cafe" instead of dropping the letter.
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    stem = _UNSAFE_CHARACTERS.sub("_", stem)
    # Dots are not allowed inside the stem: outputs have exactly one dot, before the extension.
    stem = stem.replace(".", "_").strip("._-")
    return stem[:MAX_STEM_LENGTH].rstrip("._-") or FALLBACK_STEM


def thumbnail_name(stem: str, *, box: tuple[int, int], extension: str) -> str:
    """Name of one thumbnail: `<stem>_<W>x<H>.<ext>`, W x H being the requested box."""
    width, height = box
    return f"{stem}_{width}x{height}.{extension}"


def archive_name(stem: str) -> str:
    """Name of the zip holding the original, the thumbnails and the manifest."""
    return f"{stem}.zip"


def format_box(box: tuple[int, int]) -> str:
    """`(128, 96)` -> `"128x96"`, the form used in names, the API and the manifest."""
    return f"{box[0]}x{box[1]}"


def parse_box(text: str) -> tuple[int, int]:
    """`"128x96"` -> `(128, 96)`: the inverse of format_box, for boxes already checked."""
    width, height = text.lower().split("x")
    return int(width), int(height)


def parse_boxes(text: str, *, largest: int) -> list[tuple[int, int]]:
    """Parse `"128x128,256x256"` into boxes; raise ValueError with a readable reason."""
    boxes: list[tuple[int, int]] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(\d{1,5})[xX](\d{1,5})", part)
        if not match:
            raise ValueError(f"'{part[:20]}' is not a size like 128x128.")
        box = (int(match.group(1)), int(match.group(2)))
        if not (1 <= box[0] <= largest and 1 <= box[1] <= largest):
            raise ValueError(f"Each side of a size must be between 1 and {largest} pixels.")
        if box not in boxes:
            boxes.append(box)
    if not boxes:
        raise ValueError("Give at least one size like 128x128.")
    return boxes
