"""A job's life after its upload: sent, claimed under a lease, made, failed or retried, requeued
when the broker may have lost it, and purged when old."""

import functools
import io
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from .. import imaging, naming, selectors, storage_io
from ..job_events import job_ended_announce
from ..models import Job
from ..prepared import PreparedUpdate, update_returns_rows
from .callbacks import webhook_queue, webhooks_requeue_unsent
from .errors import JobBusy, LeaseLost, QueueUnavailable

logger = logging.getLogger(__name__)


MAKE_THUMBNAILS = "thumbnailer.tasks.make_thumbnails"


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
        # The arguments' reprs for the message headers, given rather than left to Celery's
        # saferepr, which walks them generically (30-70 us of a ~330 us publish).
        current_app.send_task(
            MAKE_THUMBNAILS,
            args=[str(job_id)],
            task_id=str(job_id),
            ignore_result=True,
            argsrepr=repr([str(job_id)]),
            kwargsrepr="{}",
        )
    except (BrokerError, OSError) as error:
        logger.warning("broker unavailable while sending job %s: %s", job_id, error)
        raise QueueUnavailable(str(error)) from error


def job_discard(*, job_id) -> None:
    storage_io.delete_folder(storage_io.job_folder(job_id))
    Job.objects.filter(id=job_id).delete()


def lease_seconds() -> int:
    # A claim outlives the hard time limit, so only a dead worker's job can be taken over.
    return settings.CELERY_TASK_TIME_LIMIT + settings.THUMBNAILER_LEASE_MARGIN_SECONDS


def _claim_statement(job_id, now, lease_end):
    claimable = Q(status__in=[Job.Status.PENDING, Job.Status.RETRY]) | Q(
        status=Job.Status.STARTED, lease_expires_at__lt=now
    )
    return (
        Job.objects.filter(claimable, id=job_id, expired_at__isnull=True),
        {
            "status": Job.Status.STARTED,
            "deliveries": F("deliveries") + 1,
            "lease_expires_at": lease_end,
            # The first claim sets started_at in the same write; a redelivery keeps it.
            "started_at": Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
        },
    )


_CLAIM_PARAMETERS = {
    "job_id": Job._meta.get_field("id"),
    "now": Job._meta.get_field("lease_expires_at"),
    "lease_end": Job._meta.get_field("lease_expires_at"),
}
# Once per job: compiled once (see prepared.py). The row comes back from the UPDATE itself, so
# it carries this claim's delivery count, which fences every later write (job_holds_lease),
# never a count another worker claimed meanwhile.
CLAIM = PreparedUpdate(_claim_statement, model=Job, returning=True, **_CLAIM_PARAMETERS)
# The same, for a database that cannot return rows from an UPDATE (SQLite before 3.35).
CLAIM_COUNTED = PreparedUpdate(_claim_statement, model=Job, **_CLAIM_PARAMETERS)


def job_claim(*, job_id) -> Job | None:
    """Atomically take the job for this worker; None if it is finished or gone.

    Raises JobBusy while another worker's lease on it is still running, so one job is
    never processed twice at the same time.
    """
    now = timezone.now()
    values = {"job_id": job_id, "now": now, "lease_end": now + timedelta(seconds=lease_seconds())}
    if update_returns_rows(connection):
        claimed = CLAIM.run(**values)
        if claimed:
            return claimed[0]
    else:
        # The claim and the read in one transaction, so the row read is this claim's.
        with transaction.atomic():
            if CLAIM_COUNTED.run(**values):
                return selectors.job_get(job_id=job_id)
    job = selectors.job_get(job_id=job_id)
    if job is None or job.is_finished or job.expired_at:
        return None
    raise JobBusy(retry_in=max(1.0, (job.lease_expires_at - now).total_seconds()))


def _lease_held(*, job_id, deliveries: int, now: datetime | None = None):
    """The job's row, if the worker that claimed it as delivery `deliveries` still holds its lease."""
    return Job.objects.filter(
        id=job_id,
        status=Job.Status.STARTED,
        deliveries=deliveries,
        lease_expires_at__gt=now or timezone.now(),
        expired_at__isnull=True,
    )


def _success_statement(job_id, deliveries, now, processing_ms, thumbnails, archive_path, archive_bytes):
    # The lease is checked in the same UPDATE that records the result, so a claim that
    # lapsed after the last file was written records nothing either.
    return (
        _lease_held(job_id=job_id, deliveries=deliveries, now=now),
        {
            "status": Job.Status.SUCCESS,
            "finished_at": now,
            "processing_ms": processing_ms,
            "lease_expires_at": None,
            "error_code": "",
            "error_message": "",
            "thumbnails": thumbnails,
            "archive_path": archive_path,
            "archive_bytes": archive_bytes,
        },
    )


# Once per job, compiled once (see prepared.py).
RECORD_SUCCESS = PreparedUpdate(
    _success_statement,
    model=Job,
    job_id=Job._meta.get_field("id"),
    deliveries=Job._meta.get_field("deliveries"),
    now=Job._meta.get_field("finished_at"),
    processing_ms=Job._meta.get_field("processing_ms"),
    thumbnails=Job._meta.get_field("thumbnails"),
    archive_path=Job._meta.get_field("archive_path"),
    archive_bytes=Job._meta.get_field("archive_bytes"),
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
        recorded = RECORD_SUCCESS.run(
            job_id=job.id,
            deliveries=job.deliveries,
            now=timezone.now(),
            processing_ms=round((time.monotonic() - started) * 1000),
            **stored,
        )
    if recorded:
        job_ended_announce(job_id=job.id)
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
        job_ended_announce(job_id=job_id)
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
