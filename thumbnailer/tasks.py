"""Celery tasks: thin adapters from a message to one service call.

Time limits, acks_late and reject_on_worker_lost come from the CELERY_* settings; the
options here are the ones that belong to a particular task.
"""

import logging

from billiard.exceptions import TimeLimitExceeded
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import DatabaseError, connection
from redis.exceptions import RedisError

from . import reports, services
from .storage_io import STORAGE_ERRORS, StorageNameTaken

logger = logging.getLogger(__name__)

# Worth another try: the storage, the network or the database had a bad moment.
# A bad image is never among them: it fails once, with a readable error.
TRANSIENT_ERRORS = (*STORAGE_ERRORS, DatabaseError, StorageNameTaken)

TIMEOUT_MESSAGE = "Making the thumbnails took too long and was stopped."


class JobTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """Record any failure the task body could not record itself (hard time limit, crashes)."""
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is None:
            return
        if isinstance(exc, TimeLimitExceeded):
            services.job_fail(job_id=job_id, code="timeout", message=TIMEOUT_MESSAGE)
        else:
            services.job_fail(
                job_id=job_id,
                code="internal_error",
                message="Something went wrong on our side while making the thumbnails.",
            )


def transient_retry_countdown(retries: int) -> int:
    """Seconds before the next try: 2, 4, 8 ... 60 s, with full jitter so many jobs spread out.

    Computed here because Celery applies retry_backoff only to autoretry_for, and a plain
    self.retry() would wait default_retry_delay (180 s): past the broker's visibility
    timeout, so the waiting message would be delivered a second time.
    """
    return get_exponential_backoff_interval(factor=2, retries=retries, maximum=60, full_jitter=True)


@shared_task(bind=True, base=JobTask, name="thumbnailer.tasks.make_thumbnails", max_retries=5)
def make_thumbnails(self, job_id: str) -> str:
    """Make the thumbnails and the zip of one job; the Job row holds the results."""

    reporting = True

    def report_progress(done: int, total: int) -> None:
        # Only between sizes: after the last one the Job row turns SUCCESS at once, so the
        # result backend is never written for a one-size job (selectors.job_progress agrees).
        nonlocal reporting
        if done == total or not reporting:
            return
        try:
            self.update_state(
                state="PROGRESS",
                meta={"current": done, "total": total, "percent": round(100 * done / total)},
            )
        except (RedisError, OSError) as error:
            # Progress is only for the page: with Redis unreachable the job goes on without
            # it (and stops asking) instead of waiting on Redis past its time limit.
            reporting = False
            logger.warning("job %s: progress not reported, result backend unavailable: %r", job_id, error)

    claim = services.Claim()
    try:
        services.job_process(job_id=job_id, on_progress=report_progress, claim=claim)
    except SoftTimeLimitExceeded:
        # The limit may strike in the middle of a query (a database that stopped answering):
        # that connection is unusable, so the failure is recorded on a fresh one. Only over
        # this worker's own claim: back from a network cut, another worker may have the job.
        connection.close()
        services.job_fail(job_id=job_id, code="timeout", message=TIMEOUT_MESSAGE, deliveries=claim.deliveries)
    except services.JobBusy as busy:
        # Another worker holds the lease; come back when it lapses (not counted as a retry).
        raise self.retry(countdown=busy.retry_in, max_retries=None) from busy
    except TRANSIENT_ERRORS as error:
        logger.warning("transient error on job %s: %r", job_id, error)
        try:
            services.job_mark_retry(job_id=job_id)
        except DatabaseError:
            # The database is what is down: the row keeps this claim until its lease lapses,
            # and the retry (or the requeue) takes the job then. Failing here would end it.
            logger.warning("job %s: retry not recorded, the database is unavailable", job_id)
        raise self.retry(exc=error, countdown=transient_retry_countdown(self.request.retries)) from error
    return job_id


@shared_task(name="thumbnailer.tasks.summarize")
def summarize() -> int:
    """Write one Summary row for the time since the last one."""
    return reports.summary_create().pk


@shared_task(name="thumbnailer.tasks.send_daily_digest")
def send_daily_digest() -> dict:
    """Email the day's totals to ADMINS."""
    return reports.daily_digest_send()


@shared_task(name="thumbnailer.tasks.purge_expired")
def purge_expired() -> int:
    """Delete the files of jobs past THUMBNAILER_JOB_RETENTION."""
    return services.jobs_purge_expired()


@shared_task(name="thumbnailer.tasks.requeue_stale_jobs")
def requeue_stale_jobs() -> int:
    """Re-send jobs that the broker may have lost."""
    return services.jobs_requeue_stale()


def webhook_retry_countdown(retries: int) -> int | None:
    """Seconds before webhook try retries + 2, or None once THUMBNAILER_WEBHOOK_GIVE_UP_AFTER_SECONDS is spent.

    Base, twice that, four times ... capped at 120 s: under the broker's visibility timeout,
    so a retry waiting in a worker is never handed to another one as well.
    """

    def delay(attempt: int) -> int:
        return min(120, settings.THUMBNAILER_WEBHOOK_RETRY_BASE_SECONDS * 2**attempt)

    waited = sum(delay(attempt) for attempt in range(retries))
    if waited + delay(retries) > settings.THUMBNAILER_WEBHOOK_GIVE_UP_AFTER_SECONDS:
        return None
    return delay(retries)


@shared_task(bind=True, name="thumbnailer.tasks.deliver_webhook", max_retries=None)
def deliver_webhook(self, job_id: str) -> None:
    """POST a finished job's status JSON to its callback URL; retry with backoff for about an hour."""
    if services.webhook_deliver(job_id=job_id) is not False:
        return
    countdown = webhook_retry_countdown(self.request.retries)
    if countdown is None:
        services.webhook_give_up(job_id=job_id)
        return
    raise self.retry(countdown=countdown)
