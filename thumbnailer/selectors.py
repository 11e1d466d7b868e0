"""Reads for pages and JSON: job status, a visitor's recent jobs, summaries."""

import logging

from celery.result import AsyncResult
from django.conf import settings

from . import storage_io
from .models import Job, Summary
from .prepared import PreparedSelect

logger = logging.getLogger(__name__)


# The status read and the worker's read after its claim, once or more for every job: compiled
# once (see prepared.py), and unordered, as the id is unique.
JOB_BY_ID = PreparedSelect(Job.objects.order_by(), "id")


def job_get(*, job_id) -> Job | None:
    return JOB_BY_ID.first(id=job_id)


def jobs_finished(*, job_ids: list[str]) -> list[Job]:
    """The SUCCESS jobs among job_ids whose files still exist, in the order given."""
    found = {
        str(job.id): job
        for job in Job.objects.filter(id__in=job_ids, status=Job.Status.SUCCESS, expired_at__isnull=True)
    }
    return [found[job_id] for job_id in dict.fromkeys(job_ids) if job_id in found]


def jobs_recent(*, owner_key: str) -> list[Job]:
    if not owner_key:
        return []
    return list(
        Job.objects.filter(owner_key=owner_key, expired_at__isnull=True)[: settings.THUMBNAILER_RECENT_JOBS]
    )


def job_progress(*, job: Job) -> dict:
    """Progress of a running job, from the task's PROGRESS state in the result backend.

    The task reports progress between sizes only, so a one-size job has none to ask for.
    """
    total = len(job.sizes) or 1
    progress = {"current": 0, "total": total, "percent": 0}
    if total == 1:
        return progress
    try:
        result = AsyncResult(str(job.id))
        if result.state == "PROGRESS" and isinstance(result.info, dict):
            progress.update({key: result.info[key] for key in progress if key in result.info})
    except Exception as error:  # the result backend is optional for a status answer
        logger.warning("no progress for job %s: %r", job.id, error)
    return progress


def job_task_status(*, job: Job, progress: dict | None) -> str:
    if job.status == Job.Status.STARTED and progress and progress["current"] > 0:
        return "PROGRESS"
    return job.status


def job_status_payload(*, job: Job) -> dict:
    """The status JSON (the tutorial's polling contract, extended), from the Job row and task progress."""
    payload: dict = {"task_id": str(job.id)}
    progress = job_progress(job=job) if job.status == Job.Status.STARTED else None
    payload["task_status"] = job_task_status(job=job, progress=progress)
    if job.status not in Job.FINISHED:
        payload["progress"] = progress or {"current": 0, "total": len(job.sizes) or 1, "percent": 0}
    if job.status == Job.Status.SUCCESS:
        payload["results"] = {
            "archive_path": storage_io.public_url(job.archive_path),
            "original": {
                "url": storage_io.public_url(job.original_path),
                "width": job.original_width,
                "height": job.original_height,
                "format": job.original_format,
                "bytes": job.original_bytes,
            },
            "thumbnails": [
                {
                    "size": thumb["size"],
                    "url": storage_io.public_url(thumb["path"]),
                    "width": thumb["width"],
                    "height": thumb["height"],
                    "format": thumb["format"],
                    "mode": thumb.get("mode", "fit"),
                    "bytes": thumb["bytes"],
                }
                for thumb in job.thumbnails
            ],
        }
    if job.status == Job.Status.FAILURE:
        payload["error"] = {"code": job.error_code, "message": job.error_message}
    return payload


def summaries_recent(*, limit: int = 120) -> list[Summary]:
    """The newest summaries, oldest first (the order a chart reads)."""
    return list(reversed(Summary.objects.order_by("-period_end")[:limit]))


def summary_payload(summary: Summary) -> dict:
    return {
        "period_start": summary.period_start.isoformat(),
        "period_end": summary.period_end.isoformat(),
        "jobs_created": summary.jobs_created,
        "jobs_succeeded": summary.jobs_succeeded,
        "jobs_failed": summary.jobs_failed,
        "backlog": summary.backlog,
        "processing_p50_ms": summary.processing_p50_ms,
        "processing_p95_ms": summary.processing_p95_ms,
        "queue_wait_p50_ms": summary.queue_wait_p50_ms,
        "queue_wait_p95_ms": summary.queue_wait_p95_ms,
        "bytes_in": summary.bytes_in,
        "bytes_out": summary.bytes_out,
    }
