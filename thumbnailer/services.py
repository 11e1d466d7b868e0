"""Business logic for jobs: the Django glue around the pure image pipeline.

Writes live here (job_submit, job_process, ...); reads for pages and JSON live in
selectors.py. Views and tasks stay thin and call one function each.
"""

import functools
import hashlib
import hmac
import io
import json
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from . import imaging, naming, selectors, storage_io, webhooks
from .models import Job

logger = logging.getLogger(__name__)

MAKE_THUMBNAILS = "thumbnailer.tasks.make_thumbnails"
DELIVER_WEBHOOK = "thumbnailer.tasks.deliver_webhook"


class QueueUnavailable(Exception):
    """The broker could not take the job; nothing was kept."""


class JobBusy(Exception):
    """Another worker holds the job's lease; try again after `retry_in` seconds."""

    def __init__(self, retry_in: float):
        super().__init__(f"job is being processed elsewhere; retry in {retry_in:.0f}s")
        self.retry_in = retry_in


class LeaseLost(Exception):
    """This worker's claim on a job lapsed or passed to another worker: it must write nothing more."""


class UploadRefused(Exception):
    """Why one uploaded file was not accepted: a snake_case code and a sentence for a person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def job_may_delete(*, job: Job, session_key: str | None, bearer_token: str | None) -> bool:
    """The uploader may delete a job: the browser session that sent it, or the holder of its token."""
    if bearer_token and job.delete_token_sha256:
        return hmac.compare_digest(token_hash(bearer_token), job.delete_token_sha256)
    return bool(session_key) and hmac.compare_digest(session_key, job.owner_key or "")


def job_delete(*, job_id) -> None:
    """Delete a job's files now; its row stays, marked deleted (its status answers 410 from then on).

    The row is marked first, so a worker still making thumbnails for it neither records them
    nor leaves them behind (job_process's SUCCESS update checks the mark, and if it is set the
    worker removes what it wrote).
    """
    now = timezone.now()
    Job.objects.filter(id=job_id, expired_at__isnull=True).update(
        deleted_at=now, expired_at=now, lease_expires_at=None
    )
    storage_io.delete_folder(storage_io.job_folder(job_id))


def options_key(
    *, boxes: list[tuple[int, int]], options: imaging.ThumbnailOptions = imaging.DEFAULT_OPTIONS
) -> str:
    """Everything besides the bytes that decides a job's outputs, in one comparable string."""
    key = "sizes=" + ",".join(naming.format_box(box) for box in boxes)
    if options != imaging.DEFAULT_OPTIONS:  # the tutorial's jobs keep the key they always had
        focus = ",".join(f"{value:g}" for value in options.focus) if options.focus else ""
        key += f";mode={options.mode};focus={focus};format={options.format};quality={options.quality or ''}"
    return key


def job_copy_result(*, job: Job, original: File) -> bool:
    """Answer a new job from an unexpired SUCCESS job of the same bytes and options; False if none.

    The new job gets copies of the thumbnails under its own names and a zip of its own
    (its original's name in it and in the manifest), so deleting or purging either job
    never touches the other's files. No worker is involved: the job is SUCCESS at once.
    """
    if not job.sha256:
        return False
    # The new job is PENDING, so the SUCCESS filter already leaves it out. Any match will do
    # (equal bytes and options make equal outputs), so the lookup is left unordered: an
    # ORDER BY costs Django more to compile than the indexed query costs to run.
    source = next(
        iter(
            Job.objects.filter(
                sha256=job.sha256,
                options_key=job.options_key,
                status=Job.Status.SUCCESS,
                expired_at__isnull=True,
            ).order_by()[:1]
        ),
        None,
    )
    if source is None:
        return False
    started = time.monotonic()
    try:
        thumbnails = [
            imaging.ThumbnailFile(
                name=naming.thumbnail_name(
                    job.stem, box=naming.parse_box(entry["size"]), extension=entry["path"].rsplit(".", 1)[-1]
                ),
                data=storage_io.read_all(entry["path"]),
                width=entry["width"],
                height=entry["height"],
                format=entry["format"],
                box=naming.parse_box(entry["size"]),
                mode=entry.get("mode", "fit"),
            )
            for entry in source.thumbnails
        ]
    except OSError as error:  # the earlier job was deleted or purged meanwhile: make them anew
        logger.info("job %s: could not copy the result of %s (%s); queueing it", job.id, source.id, error)
        return False
    original.seek(0)
    package = imaging.Package(
        original=imaging.ArchiveMember(
            name=job.original_path.rsplit("/", 1)[-1],
            data=original.read(),
            width=job.original_width,
            height=job.original_height,
            format=job.original_format,
        ),
        thumbnails=thumbnails,
    )
    stored = package_store(job=job, package=package)
    now = timezone.now()
    Job.objects.filter(id=job.id, status=Job.Status.PENDING).update(
        status=Job.Status.SUCCESS,
        repeat_of=source,
        sent_at=None,  # answered here; no message was ever sent
        started_at=now,
        finished_at=now,
        processing_ms=round((time.monotonic() - started) * 1000),
        **stored,
    )
    job.refresh_from_db()
    webhook_queue(job_id=job.id, callback_url=job.callback_url)
    return True


def package_store(*, job: Job, package: imaging.Package, deliveries: int | None = None) -> dict:
    """Write a job's thumbnails and zip through storage; return the Job fields that describe them.

    `deliveries` is the claim of the worker writing them: before each file it must still hold
    the job's lease, else LeaseLost is raised and nothing more is written. None for a job no
    worker holds (a repeat, answered in the web process).
    """

    def check_lease() -> None:
        if deliveries is not None and not job_holds_lease(
            job_id=job.id, deliveries=deliveries, lease_expires_at=job.lease_expires_at
        ):
            raise LeaseLost(f"job {job.id}: delivery {deliveries} no longer holds the lease")

    thumbnails = []
    for thumbnail in package.thumbnails:
        path = storage_io.job_file_path(job.id, thumbnail.name)
        check_lease()
        thumbnails.append(
            {
                "size": naming.format_box(thumbnail.box),
                "path": path,
                "width": thumbnail.width,
                "height": thumbnail.height,
                "format": thumbnail.format,
                "mode": thumbnail.mode,
                "bytes": storage_io.write_exact(path, thumbnail.data),
            }
        )
    archive_path = storage_io.job_file_path(job.id, naming.archive_name(job.stem))
    # Above 8 MiB the zip spools to the system temp dir, a file deleted when it closes.
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as archive:
        package.write_archive(archive)
        archive.seek(0)
        check_lease()
        archive_bytes = storage_io.write_exact(archive_path, File(archive, name=archive_path))
    return {"thumbnails": thumbnails, "archive_path": archive_path, "archive_bytes": archive_bytes}


def job_send(*, job_id) -> None:
    """Publish make_thumbnails(job_id) again and record when; raise QueueUnavailable."""
    job_publish(job_id=job_id)
    Job.objects.filter(id=job_id).update(sent_at=timezone.now())


def job_publish(*, job_id) -> None:
    """Publish make_thumbnails(job_id) with the job id as the task id; raise QueueUnavailable."""
    try:
        # ignore_result: nobody waits on this task's result (the Job row is the outcome, and
        # progress is stored explicitly). Without it Celery's Redis backend subscribes to
        # every sent task's result channel, and once Redis has been down that subscription
        # hangs ~20 s and then fails for good ("must be restarted"): 500s instead of 503s.
        current_app.send_task(MAKE_THUMBNAILS, args=[str(job_id)], task_id=str(job_id), ignore_result=True)
    except (BrokerError, OSError) as error:
        logger.warning("broker unavailable while sending job %s: %s", job_id, error)
        raise QueueUnavailable(str(error)) from error


def job_discard(*, job_id) -> None:
    storage_io.delete_folder(storage_io.job_folder(job_id))
    Job.objects.filter(id=job_id).delete()


def _lease_seconds() -> int:
    # A claim outlives the hard time limit, so only a dead worker's job can be taken over.
    return settings.CELERY_TASK_TIME_LIMIT + settings.THUMBNAILER_LEASE_MARGIN_SECONDS


def job_claim(*, job_id) -> Job | None:
    """Atomically take the job for this worker; None if it is finished or gone.

    Raises JobBusy while another worker's lease on it is still running, so one job is
    never processed twice at the same time.
    """
    now = timezone.now()
    claimable = Q(status__in=[Job.Status.PENDING, Job.Status.RETRY]) | Q(
        status=Job.Status.STARTED, lease_expires_at__lt=now
    )
    # One transaction: the row read back carries this claim's delivery count, which fences
    # every later write (job_holds_lease), never a count another worker claimed meanwhile.
    with transaction.atomic():
        claimed = Job.objects.filter(claimable, id=job_id, expired_at__isnull=True).update(
            status=Job.Status.STARTED,
            deliveries=F("deliveries") + 1,
            lease_expires_at=now + timedelta(seconds=_lease_seconds()),
            # The first claim sets started_at in the same write; a redelivery keeps it.
            started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
        )
        job = selectors.job_get(job_id=job_id)
    if job is None or job.is_finished or job.expired_at:
        return None
    if not claimed:
        raise JobBusy(retry_in=max(1.0, (job.lease_expires_at - now).total_seconds()))
    return job


def _lease_held(*, job_id, deliveries: int):
    """The job's row, if the worker that claimed it as delivery `deliveries` still holds its lease."""
    return Job.objects.filter(
        id=job_id,
        status=Job.Status.STARTED,
        deliveries=deliveries,
        lease_expires_at__gt=timezone.now(),
        expired_at__isnull=True,
    )


def job_holds_lease(*, job_id, deliveries: int, lease_expires_at: datetime | None = None) -> bool:
    """Whether this claim still owns the job: a worker cut off past its lease writes nothing after.

    `lease_expires_at` is the end of the lease this worker took (read back by job_claim). Until
    THUMBNAILER_LEASE_MARGIN_SECONDS before it, which is the task's hard time limit, no other
    worker can have claimed the job unless the hosts' clocks disagree by more than that margin,
    so the answer needs no query. Past it (a worker that was cut off or stalled) the row answers.
    """
    if lease_expires_at is not None and timezone.now() < lease_expires_at - timedelta(
        seconds=settings.THUMBNAILER_LEASE_MARGIN_SECONDS
    ):
        return True
    return _lease_held(job_id=job_id, deliveries=deliveries).exists()


@dataclass
class Claim:
    """Which delivery of a job this worker claimed; job_process fills it in.

    The task passes it to job_fail when a time limit ends the work, so a worker that was cut off
    and comes back after another one claimed the job records nothing over that claim.
    """

    deliveries: int | None = None


def job_process(*, job_id, on_progress=None, claim: Claim | None = None) -> None:
    """Make the thumbnails and the zip for one job and record the outcome on its row."""
    job = job_claim(job_id=job_id)
    if job is None:
        logger.info("job %s is finished or gone; nothing to do", job_id)
        return
    if claim is not None:
        claim.deliveries = job.deliveries
    if job.deliveries > settings.THUMBNAILER_MAX_DELIVERIES:
        lost = job.deliveries - 1
        times = "1 time" if lost == 1 else f"{lost} times"
        job_fail(
            job_id=job.id,
            code="worker_lost",
            message=f"Processing this image stopped the worker {times}; giving up.",
        )
        return

    started = time.monotonic()
    boxes = naming.parse_boxes(",".join(job.sizes), largest=settings.THUMBNAILER_LARGEST_SIDE)
    # Read before decoding: a storage or network error is then a transient error (retried),
    # never mistaken for a damaged image. The zip needs these same bytes.
    try:
        original_data = storage_io.read_all(job.original_path)
    except FileNotFoundError:
        # Not a moment's outage: the upload is gone (deleted by hand, or a lost bucket).
        job_fail(
            job_id=job.id, code="original_missing", message="The uploaded original is no longer in storage."
        )
        return
    try:
        rendered = imaging.make_renditions(
            io.BytesIO(original_data),
            boxes=boxes,
            max_pixels=settings.THUMBNAILER_MAX_PIXELS,
            max_frames=settings.THUMBNAILER_MAX_FRAMES,
            on_progress=on_progress,
            options=job.thumbnail_options,
        )
    except imaging.ImageRejected as rejected:
        if job_holds_lease(job_id=job.id, deliveries=job.deliveries):
            job_fail(job_id=job.id, code=rejected.code, message=rejected.message)
        return

    package = imaging.package_renditions(
        original_data,
        rendered,
        original_name=job.original_path.rsplit("/", 1)[-1],
        thumbnail_name=functools.partial(naming.thumbnail_name, job.stem),
    )
    try:
        stored = package_store(job=job, package=package, deliveries=job.deliveries)
    except LeaseLost:
        recorded = 0
    else:
        # The lease is checked in the same UPDATE that records the result, so a claim that
        # lapsed after the last file was written records nothing either.
        recorded = _lease_held(job_id=job.id, deliveries=job.deliveries).update(
            status=Job.Status.SUCCESS,
            finished_at=timezone.now(),
            processing_ms=round((time.monotonic() - started) * 1000),
            lease_expires_at=None,
            error_code="",
            error_message="",
            **stored,
        )
    if recorded:
        webhook_queue(job_id=job.id, callback_url=job.callback_url)
        return
    logger.warning("job %s: delivery %d lost its lease; its result is not recorded", job.id, job.deliveries)
    if Job.objects.filter(id=job.id, expired_at__isnull=False).exists():
        # Deleted by its uploader while it was being made: take back what was just written.
        storage_io.delete_folder(storage_io.job_folder(job.id))


def job_fail(*, job_id, code: str, message: str, deliveries: int | None = None) -> None:
    """Record a final FAILURE with a readable reason (unless the job already finished).

    With `deliveries` (a worker's claim), only while no later claim has taken the job.
    """
    unfinished = Job.objects.filter(id=job_id)
    if deliveries is not None:
        unfinished = unfinished.filter(deliveries=deliveries)
    failed = unfinished.exclude(status=Job.Status.SUCCESS).update(
        status=Job.Status.FAILURE,
        error_code=code,
        error_message=message[:300],
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    if failed:
        callback_url = Job.objects.filter(id=job_id).values_list("callback_url", flat=True).first()
        webhook_queue(job_id=job_id, callback_url=callback_url or "")


def job_mark_retry(*, job_id) -> None:
    """Release the lease so the retried message can claim the job again.

    This attempt ended with a known outcome, so it is taken off the delivery count: only
    deliveries whose worker died count towards THUMBNAILER_MAX_DELIVERIES, never retries.
    """
    Job.objects.filter(id=job_id, status=Job.Status.STARTED).update(
        status=Job.Status.RETRY, lease_expires_at=None, deliveries=F("deliveries") - 1
    )


def jobs_requeue_stale() -> int:
    """Send again every job the broker may have lost: PENDING/RETRY too long, or a lapsed lease."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.THUMBNAILER_STALE_AFTER_SECONDS)
    waiting_too_long = Q(status__in=[Job.Status.PENDING, Job.Status.RETRY]) & (
        Q(sent_at__lt=stale_before) | Q(sent_at__isnull=True, created_at__lt=stale_before)
    )
    lease_lapsed = Q(status=Job.Status.STARTED, lease_expires_at__lt=now)
    stale_ids = list(
        Job.objects.filter(waiting_too_long | lease_lapsed, expired_at__isnull=True).values_list(
            "id", flat=True
        )[:500]
    )
    sent = 0
    for job_id in stale_ids:
        try:
            job_send(job_id=job_id)
        except QueueUnavailable:
            break
        sent += 1
    if sent:
        logger.info("requeued %d stale job(s)", sent)
    webhooks_requeue_unsent()
    return sent


def jobs_purge_expired(*, batch_size: int = 200) -> int:
    """Delete the files of jobs older than THUMBNAILER_JOB_RETENTION; their rows stay, marked expired."""
    cutoff = timezone.now() - settings.THUMBNAILER_JOB_RETENTION
    purged = 0
    while True:
        batch = list(
            Job.objects.filter(created_at__lt=cutoff, expired_at__isnull=True).values_list("id", flat=True)[
                :batch_size
            ]
        )
        if not batch:
            break
        for job_id in batch:
            storage_io.delete_folder(storage_io.job_folder(job_id))
        with transaction.atomic():
            Job.objects.filter(id__in=batch).update(expired_at=timezone.now())
        purged += len(batch)
    if purged:
        logger.info("purged the files of %d expired job(s)", purged)
    return purged


# Marks a webhook the broker refused when its job ended; jobs_requeue_stale() sends it again.
WEBHOOK_NOT_QUEUED = "not queued: "


def webhook_queue(*, job_id, callback_url: str) -> bool:
    """Queue the webhook of a job that just ended, if it has a callback URL; no one waits on it.

    False when the broker refused it: the job is marked, and the requeue task sends it later.
    """
    if not callback_url:
        return True
    try:
        current_app.send_task(DELIVER_WEBHOOK, args=[str(job_id)], ignore_result=True)
    except (BrokerError, OSError) as error:
        logger.warning("job %s: webhook not queued, the broker is unavailable: %s", job_id, error)
        Job.objects.filter(id=job_id).update(webhook_last_error=f"{WEBHOOK_NOT_QUEUED}{error}"[:300])
        return False
    return True


def webhooks_requeue_unsent() -> int:
    """Queue again the webhooks the broker refused when their jobs ended; stop at the first refusal."""
    unsent = Job.objects.filter(
        webhook_status=Job.WebhookStatus.PENDING,
        webhook_last_error__startswith=WEBHOOK_NOT_QUEUED,
        expired_at__isnull=True,
    ).values_list("id", "callback_url")[:500]
    queued = 0
    for job_id, callback_url in unsent:
        if not webhook_queue(job_id=job_id, callback_url=callback_url):
            break
        Job.objects.filter(id=job_id, webhook_last_error__startswith=WEBHOOK_NOT_QUEUED).update(
            webhook_last_error=""
        )
        queued += 1
    if queued:
        logger.info("queued %d webhook(s) the broker had refused", queued)
    return queued


def webhook_deliver(*, job_id) -> bool | None:
    """POST a finished job's status JSON to its callback URL once; None when there is nothing to send.

    True when the receiver answered 2xx, False for any other answer or none (the task retries).
    """
    job = Job.objects.filter(id=job_id).first()
    if job is None or job.webhook_status != Job.WebhookStatus.PENDING or not job.is_finished:
        return None
    if job.expired_at:
        Job.objects.filter(id=job_id).update(
            webhook_status=Job.WebhookStatus.GIVEN_UP,
            webhook_last_error="The job was deleted before delivery.",
        )
        return None
    body = json.dumps(selectors.job_status_payload(job=job)).encode()
    delivery = webhooks.deliver(
        job.callback_url,
        body,
        secret=settings.THUMBNAILER_WEBHOOK_SECRET,
        allow_private=settings.THUMBNAILER_WEBHOOK_ALLOW_PRIVATE,
        timeout=settings.THUMBNAILER_WEBHOOK_TIMEOUT_SECONDS,
    )
    outcome = f"HTTP {delivery.status}" if delivery.status is not None else delivery.error
    Job.objects.filter(id=job_id).update(
        webhook_attempts=F("webhook_attempts") + 1,
        webhook_last_error="" if delivery.delivered else outcome[:300],
        webhook_status=Job.WebhookStatus.DELIVERED if delivery.delivered else Job.WebhookStatus.PENDING,
    )
    return delivery.delivered


def webhook_give_up(*, job_id) -> None:
    """Record that the receiver never took the webhook; the job's own result is untouched."""
    Job.objects.filter(id=job_id, webhook_status=Job.WebhookStatus.PENDING).update(
        webhook_status=Job.WebhookStatus.GIVEN_UP
    )
