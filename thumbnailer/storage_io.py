"""Reading and writing job files through Django's storage API (never the filesystem directly).

Web and worker may run on different machines with an object store between them, so every
byte goes through `default_storage`.
"""

import os
import posixpath
import uuid
from urllib.parse import urljoin

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.utils.encoding import filepath_to_uri

# What a storage backend raises when it cannot be reached or refuses for a while: the
# filesystem's OSError, and botocore's for S3-compatible stores (connection, timeout, 5xx).
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, BotoCoreError, ClientError)


class StorageNameTaken(Exception):
    """The storage chose another name than asked: someone else wrote the same path meanwhile."""


def job_folder(job_id) -> str:
    return f"jobs/{job_id}"


def job_file_path(job_id, name: str) -> str:
    return f"{job_folder(job_id)}/{name}"


def public_url(path: str) -> str:
    """The site-relative URL of a stored file, `/media/<path>`, whatever the storage.

    Pages and JSON keep this one form (the tutorial's script appends it to the page's host);
    the media view serves it, or redirects to the object store.
    """
    return urljoin(settings.MEDIA_URL, filepath_to_uri(path).lstrip("/"))


def local_path(path: str) -> str | None:
    """Where a stored file lives on this machine's disk; None for an object store."""
    try:
        return default_storage.path(path)
    except NotImplementedError:
        return None


def write_exact(path: str, content: bytes | File) -> int:
    """Write `content` at exactly `path`, replacing what is there; return the size written.

    Storage backends pick a fresh name when one is taken; outputs must keep their names
    so a redelivered task rewrites the same files instead of adding copies. Readers see the
    old file or the new one, never none: on disk the new one is written beside it and
    renamed over it; in an object store a PUT to the same key replaces it whole
    (django-storages' file_overwrite, which settings keep on).
    """
    file = ContentFile(content) if isinstance(content, bytes) else content
    # Known before writing: asking the storage afterwards is a stat on disk, and on an object
    # store a HEAD request per file.
    size = file.size
    target = local_path(path)
    if target is None:
        saved_as = default_storage.save(path, file)
        if saved_as != path:
            default_storage.delete(saved_as)
            raise StorageNameTaken(f"{path} was written concurrently")
    else:
        # A name nobody else writes, in the same folder (so the rename stays on one
        # filesystem); the storage creates the folder and sets the file's permissions.
        temporary = default_storage.save(
            posixpath.join(posixpath.dirname(path), f".{uuid.uuid4().hex}.part"), file
        )
        try:
            os.replace(default_storage.path(temporary), target)
        except BaseException:
            default_storage.delete(temporary)
            raise
    return size


def read_all(path: str) -> bytes:
    with default_storage.open(path, "rb") as stored:
        return stored.read()


def delete_folder(folder: str) -> int:
    """Delete every file in a job folder, then the folder; return how many files were deleted."""
    try:
        # An object store has no folders to ask exists() about: a missing prefix lists empty.
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return 0
    for name in files:
        default_storage.delete(f"{folder}/{name}")
    # The filesystem keeps an empty directory (one per discarded or purged job, forever);
    # object stores have no folders, and deleting a missing key is a no-op there.
    default_storage.delete(folder)
    return len(files)
