"""Reading and writing job files through Django's storage API (never the filesystem directly).

Web and worker may run on different machines with an object store between them, so every
byte goes through `default_storage`.
"""

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage


class StorageNameTaken(Exception):
    """The storage chose another name than asked: someone else wrote the same path meanwhile."""


def job_folder(job_id) -> str:
    return f"jobs/{job_id}"


def job_file_path(job_id, name: str) -> str:
    return f"{job_folder(job_id)}/{name}"


def write_exact(path: str, content: bytes | File) -> int:
    """Write `content` at exactly `path`, replacing what is there; return the size written.

    Storage backends pick a fresh name when one is taken; outputs must keep their names
    so a redelivered task rewrites the same files instead of adding copies.
    """
    if default_storage.exists(path):
        default_storage.delete(path)
    file = ContentFile(content) if isinstance(content, bytes) else content
    saved_as = default_storage.save(path, file)
    if saved_as != path:
        default_storage.delete(saved_as)
        raise StorageNameTaken(f"{path} was written concurrently")
    return default_storage.size(path)


def read_all(path: str) -> bytes:
    with default_storage.open(path, "rb") as stored:
        return stored.read()


def delete_folder(folder: str) -> int:
    """Delete every file in a job folder, then the folder; return how many files were deleted."""
    if not default_storage.exists(folder):
        return 0
    _, files = default_storage.listdir(folder)
    for name in files:
        default_storage.delete(f"{folder}/{name}")
    # The filesystem keeps an empty directory (one per discarded or purged job, forever);
    # object stores have no folders, and deleting a missing key is a no-op there.
    default_storage.delete(folder)
    return len(files)
