"""An upload handler that stops reading a file as soon as it passes the size cap."""
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class SizeCappedUploadHandler(FileUploadHandler):
    """Skips any file larger than THUMBNAILER_MAX_UPLOAD_BYTES while it streams in.

    The skipped file never reaches memory, a temporary file or storage; its name is
    recorded on `request.oversized_uploads` so the view can answer 413 for it, while
    the other files of the same post are still accepted.
    """

    def __init__(self, request=None):
        super().__init__(request)
        self.max_bytes = settings.THUMBNAILER_MAX_UPLOAD_BYTES
        if request is not None and not hasattr(request, "oversized_uploads"):
            request.oversized_uploads = []

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            if self.request is not None:
                self.request.oversized_uploads.append(self.file_name or "")
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size):
        # Let the next handler (memory or temporary file) build the UploadedFile.
        return None
