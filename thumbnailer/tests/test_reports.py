"""Summaries and the daily digest, computed from real Job rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from thumbnailer import reports
from thumbnailer.models import Job, Summary

pytestmark = pytest.mark.django_db


def make_job(*, created_at, status=Job.Status.SUCCESS, processing_ms=100, wait_ms=20, original_bytes=1000):
    job = Job.objects.create(
        client_name="x.jpg",
        stem="x",
        sizes=["128x128"],
        original_path="jobs/x/x.jpg",
        original_format="JPEG",
        original_width=10,
        original_height=10,
        original_bytes=original_bytes,
        status=status,
    )
    finished = status in Job.FINISHED
    started_at = created_at + timedelta(milliseconds=wait_ms)
    Job.objects.filter(id=job.id).update(
        created_at=created_at,
        started_at=started_at if status != Job.Status.PENDING else None,
        finished_at=started_at + timedelta(milliseconds=processing_ms) if finished else None,
        processing_ms=processing_ms if status == Job.Status.SUCCESS else None,
        thumbnails=[{"bytes": 300}] if status == Job.Status.SUCCESS else [],
        archive_bytes=1500 if status == Job.Status.SUCCESS else None,
    )
    return job


@pytest.mark.parametrize(
    "values, p50, p95",
    [([], None, None), ([7], 7, 7), ([10, 20], 15, 20), (list(range(1, 101)), 50, 95)],
)
def test_percentile(values, p50, p95):
    assert (reports.percentile(values, 0.50), reports.percentile(values, 0.95)) == (p50, p95)


def test_summary_counts_the_period_since_the_last_one():
    now = timezone.now()
    Summary.objects.create(
        period_start=now - timedelta(minutes=2),
        period_end=now - timedelta(minutes=1),
        jobs_created=0,
        jobs_succeeded=0,
        jobs_failed=0,
        backlog=0,
        bytes_in=0,
        bytes_out=0,
    )
    make_job(created_at=now - timedelta(minutes=5))  # before the period: not counted
    for ms in (100, 200, 300):
        make_job(created_at=now - timedelta(seconds=30), processing_ms=ms, wait_ms=ms // 10)
    make_job(created_at=now - timedelta(seconds=20), status=Job.Status.FAILURE)
    make_job(created_at=now - timedelta(seconds=10), status=Job.Status.PENDING)

    summary = reports.summary_create(now=now)

    assert summary.period_start == now - timedelta(minutes=1)
    assert (summary.jobs_created, summary.jobs_succeeded, summary.jobs_failed, summary.backlog) == (
        5,
        3,
        1,
        1,
    )
    assert (summary.processing_p50_ms, summary.processing_p95_ms) == (200, 290)
    # The failed job waited too: waits are 10, 20, 20 and 30 ms.
    assert (summary.queue_wait_p50_ms, summary.queue_wait_p95_ms) == (20, 28)
    assert (summary.bytes_in, summary.bytes_out) == (5000, 3 * 1800)


def test_daily_digest_emails_the_days_totals_to_admins(mailoutbox, settings):
    settings.ADMINS = [("ops", "ops@example.com")]
    now = timezone.now()
    make_job(created_at=now - timedelta(hours=2))
    make_job(created_at=now - timedelta(hours=3), status=Job.Status.FAILURE)
    make_job(created_at=now - timedelta(days=2))  # yesterday's news

    figures = reports.daily_digest_send(now=now)

    assert (figures["jobs_created"], figures["jobs_succeeded"], figures["jobs_failed"]) == (2, 1, 1)
    [mail] = mailoutbox
    assert mail.to == ["ops@example.com"]
    assert mail.subject.endswith("Daily digest: 1 of 2 jobs done")
    assert "Failed:         1" in mail.body
