"""What the upload views learn while a body streams in: files over the size cap, each file's SHA-256.

Files over the cap are skipped as they arrive, and bodies declared too large are discarded.
"""

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

# Multipart framing and the small fields around the file(s).
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Read and discard a refused body in pieces of this size.
DISCARD_CHUNK_BYTES = 256 * 1024


class SizeCappedUploadHandler(FileUploadHandler):
    """Skips any file larger than `max_bytes` while it streams in, and names it in `oversized_names`.

    A skipped file never reaches memory, a temporary file or storage, and the other files
    of the same post are still parsed, so each can be answered on its own.
    """

    def __init__(self, request=None, *, max_bytes: int):
        super().__init__(request)
        self.max_bytes = max_bytes
        self.oversized_names: list[str] = []

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.oversized_names.append(self.file_name or "")
            raise SkipFile()  # Django reads the rest of this file's part and drops it
        return raw_data

    def file_complete(self, file_size):
        # Let the next handler (memory or temporary file) build the UploadedFile.
        return None


class DigestingUploadHandler(FileUploadHandler):
    """Hashes each file as its chunks pass by, so a repeat upload is found without reading it again."""

    def __init__(self, request=None):
        super().__init__(request)
        # Keyed by the content_type_extra dict Django hands to every handler for one file and
        # then stores on the UploadedFile it builds: the one object both ends share.
        self._digests: list[tuple[dict, str]] = []

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        if self.content_type_extra is None:
            self.content_type_extra = {}
        self._hash = hashlib.sha256()

    def receive_data_chunk(self, raw_data, start):
        self._hash.update(raw_data)
        return raw_data

    def file_complete(self, file_size):
        self._digests.append((self.content_type_extra, self._hash.hexdigest()))
        return None

    def sha256_of(self, upload) -> str | None:
        for extra, digest in self._digests:
            if extra is upload.content_type_extra:
                return digest
        return None


class UploadWatch:
    """Puts the size cap and the hashing in front of the request's upload handlers; says what they saw.

    Create it before anything reads request.POST or request.FILES. A view that is
    CSRF-protected must do so before the CSRF check reads the body: see Django's
    "Modifying upload handlers on the fly".
    """

    def __init__(self, request):
        self.size_cap = SizeCappedUploadHandler(request, max_bytes=settings.THUMBNAILER_MAX_UPLOAD_BYTES)
        self.digests = DigestingUploadHandler(request)
        # The cap first: a skipped file is never hashed, stored or kept in memory.
        request.upload_handlers[:0] = [self.size_cap, self.digests]

    @property
    def oversized_names(self) -> list[str]:
        """The names of the files skipped for their size (once request.FILES has been read)."""
        return self.size_cap.oversized_names

    def sha256_of(self, upload) -> str | None:
        """The SHA-256 of an uploaded file, hashed as it streamed in; None if it did not pass here."""
        return self.digests.sha256_of(upload)


def declared_body_too_large(request, *, files: int) -> bool:
    """True when the declared body is bigger than `files` files at the cap could make it."""
    limit = files * settings.THUMBNAILER_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES
    return declared_length(request) > limit


def declared_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def discard_body(request) -> bool:
    """Read and drop a refused request's body, up to THUMBNAILER_DISCARD_BODY_BYTES; True if all of it.

    A client that is still sending when the server answers and closes (Python's requests,
    most HTTP libraries) sees a broken pipe instead of the answer. Reading the body first
    lets every client read the 413; past the bound the connection is closed instead, as
    reading gigabytes of a refused upload would hold a server thread for minutes.
    """
    remaining = declared_length(request)
    if remaining > settings.THUMBNAILER_DISCARD_BODY_BYTES:
        return False
    while remaining > 0:
        chunk = request.read(min(DISCARD_CHUNK_BYTES, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
    return True
