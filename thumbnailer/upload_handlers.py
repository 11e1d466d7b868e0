"""The upload size cap: files over it are skipped while they stream in, bodies over it are discarded."""

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


def cap_upload_size(request) -> SizeCappedUploadHandler:
    """Put the size cap in front of the request's upload handlers; call before the body is parsed.

    The returned handler's `oversized_names` lists the files it skipped once request.FILES
    has been read. (A view that is CSRF-protected must install it before the CSRF check
    reads request.POST: see Django's "Modifying upload handlers on the fly".)
    """
    handler = SizeCappedUploadHandler(request, max_bytes=settings.THUMBNAILER_MAX_UPLOAD_BYTES)
    request.upload_handlers.insert(0, handler)
    return handler


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
