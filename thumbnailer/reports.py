"""Activity figures for beat: the periodic Summary rows and the daily digest email."""

import logging
from datetime import datetime, timedelta
from statistics import quantiles

from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import Sum
from django.utils import timezone

from .models import Job, Summary

logger = logging.getLogger(__name__)


def percentile(values: list[int], fraction: float) -> int | None:
    """The value below which `fraction` of `values` fall (inclusive method); None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cut_points = quantiles(values, n=100, method="inclusive")
    return round(cut_points[round(fraction * 100) - 1])


def activity_between(start: datetime, end: datetime) -> dict:
    """Counts, latencies and bytes for jobs created or finished in [start, end)."""
    created = Job.objects.filter(created_at__gte=start, created_at__lt=end)
    finished = Job.objects.filter(finished_at__gte=start, finished_at__lt=end)
    succeeded = finished.filter(status=Job.Status.SUCCESS)
    processing = sorted(p for p in succeeded.values_list("processing_ms", flat=True) if p is not None)
    waits = sorted(
        round((started - created_at).total_seconds() * 1000)
        for created_at, started in Job.objects.filter(started_at__gte=start, started_at__lt=end).values_list(
            "created_at", "started_at"
        )
    )
    return {
        "jobs_created": created.count(),
        "jobs_succeeded": succeeded.count(),
        "jobs_failed": finished.filter(status=Job.Status.FAILURE).count(),
        "processing_p50_ms": percentile(processing, 0.50),
        "processing_p95_ms": percentile(processing, 0.95),
        "queue_wait_p50_ms": percentile(waits, 0.50),
        "queue_wait_p95_ms": percentile(waits, 0.95),
        "bytes_in": created.aggregate(total=Sum("original_bytes"))["total"] or 0,
        "bytes_out": sum(job.bytes_out for job in succeeded.only("thumbnails", "archive_bytes")),
    }


def summary_create(*, now: datetime | None = None) -> Summary:
    """Write the Summary for the time since the previous one, and log it on one line."""
    now = now or timezone.now()
    previous = Summary.objects.order_by("-period_end").first()
    start = previous.period_end if previous else now - timedelta(seconds=60)
    backlog = Job.objects.exclude(status__in=Job.FINISHED).filter(expired_at__isnull=True).count()
    summary = Summary.objects.create(
        period_start=start, period_end=now, backlog=backlog, **activity_between(start, now)
    )
    logger.info(
        "summary %s..%s created=%d succeeded=%d failed=%d backlog=%d p50_ms=%s p95_ms=%s "
        "wait_p50_ms=%s bytes_in=%d bytes_out=%d",
        f"{start:%H:%M:%S}",
        f"{now:%H:%M:%S}",
        summary.jobs_created,
        summary.jobs_succeeded,
        summary.jobs_failed,
        summary.backlog,
        summary.processing_p50_ms if summary.processing_p50_ms is not None else "-",
        summary.processing_p95_ms if summary.processing_p95_ms is not None else "-",
        summary.queue_wait_p50_ms if summary.queue_wait_p50_ms is not None else "-",
        summary.bytes_in,
        summary.bytes_out,
    )
    return summary


def daily_digest_send(*, now: datetime | None = None) -> dict:
    """Email the last 24 hours' totals to ADMINS; return the figures sent."""
    now = now or timezone.now()
    figures = activity_between(now - timedelta(days=1), now)
    lines = [
        f"Thumbnailer activity for the 24 hours up to {now:%Y-%m-%d %H:%M %Z}:",
        "",
        f"Jobs created:   {figures['jobs_created']}",
        f"Succeeded:      {figures['jobs_succeeded']}",
        f"Failed:         {figures['jobs_failed']}",
        f"Processing p50: {figures['processing_p50_ms']} ms, p95: {figures['processing_p95_ms']} ms",
        f"Queue wait p50: {figures['queue_wait_p50_ms']} ms, p95: {figures['queue_wait_p95_ms']} ms",
        f"Bytes in:       {figures['bytes_in']}",
        f"Bytes out:      {figures['bytes_out']}",
    ]
    mail_admins(
        subject=f"Daily digest: {figures['jobs_succeeded']} of {figures['jobs_created']} jobs done",
        message="\n".join(lines),
        fail_silently=False,
    )
    logger.info("daily digest sent to %d admin(s)", len(settings.ADMINS))
    return figures
