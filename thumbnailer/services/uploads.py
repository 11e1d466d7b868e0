"""Taking an upload: check its header, store it, record its job and queue it, or answer it as a repeat."""

import logging
import secrets

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError
from django.utils import timezone

from .. import imaging, naming, storage_io
from ..models import Job
from .deletion import token_hash
from .errors import QueueUnavailable, UploadRefused
from .lifecycle import job_discard, job_publish
from .repeats import job_copy_result

logger = logging.getLogger(__name__)


STORAGE_UNAVAILABLE_MESSAGE = (
    "File storage is not available right now; nothing was stored. Please try again in a minute."
)


QUEUE_UNAVAILABLE_MESSAGE = (
    "The thumbnail queue is not available right now; nothing was stored. Please try again in a minute."
)


def upload_accept(
    *,
    upload: UploadedFile,
    sha256: str | None,
    boxes: list[tuple[int, int]],
    owner_key: str,
    callback_url: str = "",
    options: imaging.ThumbnailOptions = imaging.DEFAULT_OPTIONS,
) -> Job:
    """Check one uploaded file from its header, store it and queue its job; raise UploadRefused if not.

    sha256 is the file's digest, taken while it streamed in; with it, a repeat of a finished
    job is answered from that job's result at once.
    """
    try:
        header = upload_inspect(upload=upload)
        return job_submit(
            upload=upload,
            sha256=sha256 or "",
            header=header,
            boxes=boxes,
            owner_key=owner_key,
            callback_url=callback_url,
            options=options,
        )
    except imaging.ImageRejected as rejected:
        raise UploadRefused(rejected.code, rejected.message) from rejected
    except QueueUnavailable as unavailable:
        raise UploadRefused("queue_unavailable", QUEUE_UNAVAILABLE_MESSAGE) from unavailable
    except (*storage_io.STORAGE_ERRORS, DatabaseError) as error:
        # Storage or the database is down for a while: nothing was kept (job_create cleans up).
        logger.warning("upload refused, storage or database unavailable: %r", error)
        raise UploadRefused("storage_unavailable", STORAGE_UNAVAILABLE_MESSAGE) from error


def upload_inspect(*, upload: UploadedFile) -> imaging.ImageHeader:
    """Check an upload from its header only; raise imaging.ImageRejected if it is no good."""
    if upload.size == 0:
        raise imaging.ImageRejected("empty_file", "The file is empty.")
    upload.seek(0)
    try:
        return imaging.read_header(upload, max_pixels=settings.THUMBNAILER_MAX_PIXELS)
    finally:
        upload.seek(0)


def job_submit(
    *,
    upload: UploadedFile,
    header: imaging.ImageHeader,
    boxes: list[tuple[int, int]],
    owner_key: str,
    sha256: str = "",
    callback_url: str = "",
    options: imaging.ThumbnailOptions = imaging.DEFAULT_OPTIONS,
) -> Job:
    """Store an inspected upload and record its job; answer it from an equal finished job, or queue it.

    Raises QueueUnavailable if the broker is down (and then keeps nothing).
    """
    job = job_create(
        upload=upload,
        header=header,
        boxes=boxes,
        owner_key=owner_key,
        sha256=sha256,
        callback_url=callback_url,
        options=options,
    )
    if job_copy_result(job=job, original=upload):
        return job
    # The row is committed by now (autocommit; no request-wide transaction), so a worker
    # always finds it. Sending here rather than in transaction.on_commit() lets the caller
    # learn at once that the broker refused, and answer 503 instead of accepting a job.
    try:
        job_publish(job_id=job.id)  # the row was created with sent_at set: no second write
    except QueueUnavailable:
        # The client is told to come back later, so nothing of this attempt is kept.
        job_discard(job_id=job.id)
        raise
    return job


def job_create(
    *,
    upload: UploadedFile,
    header: imaging.ImageHeader,
    boxes: list[tuple[int, int]],
    owner_key: str,
    sha256: str = "",
    callback_url: str = "",
    options: imaging.ThumbnailOptions = imaging.DEFAULT_OPTIONS,
) -> Job:
    """Store the original under jobs/<job-id>/ and create its PENDING Job row.

    The job's delete token is on `job.delete_token` for this one answer; the row keeps its hash.
    """
    stem = naming.safe_stem(upload.name)
    delete_token = secrets.token_urlsafe(32)
    job = Job(
        owner_key=owner_key,
        client_name=(upload.name or "")[:255],
        stem=stem,
        sizes=[naming.format_box(box) for box in boxes],
        original_format=header.format,
        original_width=header.width,
        original_height=header.height,
        original_bytes=upload.size,
        sha256=sha256,
        options_key=options_key(boxes=boxes, options=options),
        mode=options.mode,
        focus=list(options.focus) if options.focus else None,
        output_format=options.format,
        quality=options.quality,
        delete_token_sha256=token_hash(delete_token),
        callback_url=callback_url,
        webhook_status=Job.WebhookStatus.PENDING if callback_url else Job.WebhookStatus.NONE,
        # Its message is published right after the insert, and the row discarded if that fails,
        # so the time is set here rather than by an UPDATE after the send.
        sent_at=timezone.now(),
    )
    job.delete_token = delete_token
    job.original_path = storage_io.job_file_path(
        job.id, naming.safe_upload_name(upload.name, extension=header.extension)
    )
    upload.seek(0)
    storage_io.write_exact(job.original_path, File(upload))
    try:
        job.save(force_insert=True)
    except Exception:
        storage_io.delete_folder(storage_io.job_folder(job.id))
        raise
    return job


def options_key(
    *, boxes: list[tuple[int, int]], options: imaging.ThumbnailOptions = imaging.DEFAULT_OPTIONS
) -> str:
    """Everything besides the bytes that decides a job's outputs, in one comparable string."""
    key = "sizes=" + ",".join(naming.format_box(box) for box in boxes)
    if options != imaging.DEFAULT_OPTIONS:  # the tutorial's jobs keep the key they always had
        focus = ",".join(f"{value:g}" for value in options.focus) if options.focus else ""
        key += f";mode={options.mode};focus={focus};format={options.format};quality={options.quality or ''}"
    return key
