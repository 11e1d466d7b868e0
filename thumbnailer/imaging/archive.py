"""What a job hands back: thumbnail files, and a reproducible zip of them, the original and a manifest."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from .pipeline import ThumbnailSet

MANIFEST_NAME = "manifest.json"
# Deflating JPEG/PNG/WebP/GIF/AVIF/HEIF gains nothing and costs time: they are stored as is.
_ALREADY_COMPRESSED = {"JPEG", "JPG", "PNG", "WEBP", "GIF", "AVIF", "HEIF", "HEIC"}
# A fixed timestamp and permissions make a rerun produce the same bytes (idempotent tasks).
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ArchiveMember:
    name: str
    data: bytes
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class ThumbnailFile(ArchiveMember):
    """One thumbnail as a file of its own and a member of the zip; box is the box it was made for."""

    box: tuple[int, int]
    mode: str = "fit"


@dataclass(frozen=True)
class Package:
    """The files one image becomes: the thumbnails, in box order, and the zip holding them with the original."""

    original: ArchiveMember
    thumbnails: list[ThumbnailFile]

    def write_archive(self, out: BinaryIO) -> None:
        """Write the zip (original, thumbnails, manifest.json) to a binary file."""
        build_archive([self.original, *self.thumbnails], out)


def package_renditions(
    original_data: bytes,
    thumbnail_set: ThumbnailSet,
    *,
    original_name: str,
    thumbnail_name: Callable[..., str],
) -> Package:
    """Name the original and each rendition, ready to be written where the caller keeps files.

    Names are the caller's: its naming rules belong to the app, and this package knows
    nothing of it. thumbnail_name is called as thumbnail_name(box=..., extension=...), so
    functools.partial(naming.thumbnail_name, stem) fits. Nothing is written here: the CLI
    writes each thumbnail's data and write_archive() to local files, the worker to storage.
    """
    header = thumbnail_set.original
    original = ArchiveMember(
        name=original_name,
        data=original_data,
        width=header.width,
        height=header.height,
        format=header.format,
    )
    thumbnails = [
        ThumbnailFile(
            name=thumbnail_name(box=rendition.box, extension=rendition.extension),
            data=rendition.data,
            width=rendition.width,
            height=rendition.height,
            format=rendition.format,
            box=rendition.box,
            mode=rendition.mode,
        )
        for rendition in thumbnail_set.renditions
    ]
    return Package(original=original, thumbnails=thumbnails)


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
                # Thumbnails say how they were made (fit, fill, smart); the original has no mode.
                **({"mode": member.mode} if isinstance(member, ThumbnailFile) else {}),
            }
            for member in members
        ]
    }
    manifest_data = (json.dumps(manifest, indent=2) + "\n").encode()

    with zipfile.ZipFile(out, "w") as archive:
        for member in members:
            store_only = member.format.upper() in _ALREADY_COMPRESSED
            _write_member(archive, member.name, member.data, store_only=store_only)
        _write_member(archive, MANIFEST_NAME, manifest_data, store_only=False)


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes, *, store_only: bool) -> None:
    """Add one member: stored as is if store_only (its data is already compressed), else deflated."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, whatever the machine, so the bytes do not depend on it
    if store_only:
        archive.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    else:
        archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
