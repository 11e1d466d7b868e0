"""The Celery tasks in a real `celery worker` process, over the session's real Redis."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from thumbnailer import tasks
from thumbnailer.models import Job, Summary

from .support import images
from .support.polling import wait_for_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_an_uploaded_photo_becomes_thumbnails_and_a_zip(client, celery_worker_process):
    original = images.jpeg_bytes((1200, 900))
    response = client.post(
        "/api/jobs/", {"image_file": images.upload("beach.jpg", original), "sizes": "128x128,256x256"}
    )
    job_id = response.json()["task_id"]

    status = wait_for_job(client, job_id)

    job = Job.objects.get(id=job_id)
    folder = f"/media/jobs/{job_id}"
    assert status == {
        "task_id": job_id,
        "task_status": "SUCCESS",
        "results": {
            "archive_path": f"{folder}/beach.zip",
            "original": {
                "url": f"{folder}/beach.jpg",
                "width": 1200,
                "height": 900,
                "format": "JPEG",
                "bytes": len(original),
            },
            "thumbnails": [
                {
                    "size": "128x128",
                    "url": f"{folder}/beach_128x128.jpg",
                    "width": 128,
                    "height": 96,
                    "format": "JPEG",
                    "mode": "fit",
                    "bytes": job.thumbnails[0]["bytes"],
                },
                {
                    "size": "256x256",
                    "url": f"{folder}/beach_256x256.jpg",
                    "width": 256,
                    "height": 192,
                    "format": "JPEG",
                    "mode": "fit",
                    "bytes": job.thumbnails[1]["bytes"],
                },
            ],
        },
    }
    with default_storage.open(job.archive_path) as stored:
        archive = zipfile.ZipFile(io.BytesIO(stored.read()))
    assert archive.namelist() == ["beach.jpg", "beach_128x128.jpg", "beach_256x256.jpg", "manifest.json"]
    assert archive.read("beach.jpg") == original


def test_a_damaged_image_ends_as_failure_and_the_worker_goes_on(client, celery_worker_process):
    bad = client.post("/api/jobs/", {"image_file": images.upload("cut.jpg", images.truncated_jpeg())})
    good = client.post("/api/jobs/", {"image_file": images.upload("ok.jpg", images.jpeg_bytes())})

    bad_status = wait_for_job(client, bad.json()["task_id"])
    good_status = wait_for_job(client, good.json()["task_id"])

    assert bad_status["task_status"] == "FAILURE"
    assert bad_status["error"]["code"] == "corrupt_image"
    assert "results" not in bad_status
    assert good_status["task_status"] == "SUCCESS"


def test_beat_tasks_run_in_the_worker(celery_worker_process, settings):
    """Each scheduled task, sent the way beat sends it, does its work in the worker."""
    old = Job.objects.create(
        client_name="old.jpg",
        stem="old",
        sizes=["128x128"],
        original_path="jobs/old/old.jpg",
        original_format="JPEG",
        original_width=1,
        original_height=1,
        original_bytes=1,
        status=Job.Status.SUCCESS,
    )
    Job.objects.filter(id=old.id).update(
        created_at=timezone.now() - settings.THUMBNAILER_JOB_RETENTION - timedelta(days=1)
    )

    summary_id = tasks.summarize.delay().get(timeout=20)
    purged = tasks.purge_expired.delay().get(timeout=20)
    requeued = tasks.requeue_stale_jobs.delay().get(timeout=20)
    digest = tasks.send_daily_digest.delay().get(timeout=20)

    assert Summary.objects.filter(id=summary_id).exists()
    assert purged == 1
    assert Job.objects.get(id=old.id).expired_at is not None
    assert requeued == 0
    assert digest["jobs_created"] == 0
    celery_worker_process.wait_for_log("Daily digest: 0 of 0 jobs done", timeout=10)


def test_webhook_retries_back_off_under_the_visibility_timeout_and_stop_after_about_an_hour(settings):
    from thumbnailer.tasks import webhook_retry_countdown

    settings.THUMBNAILER_WEBHOOK_RETRY_BASE_SECONDS = 15
    settings.THUMBNAILER_WEBHOOK_GIVE_UP_AFTER_SECONDS = 3600
    countdowns = []
    while (countdown := webhook_retry_countdown(len(countdowns))) is not None and len(countdowns) < 100:
        countdowns.append(countdown)

    assert countdowns[:5] == [15, 30, 60, 120, 120]
    assert max(countdowns) < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert 3400 <= sum(countdowns) <= 3600


def test_beat_has_the_daily_digest_at_the_configured_time(settings):
    from celery.schedules import crontab

    from thumbnailer_project.celery import app

    entry = app.conf.beat_schedule["send-daily-digest"]

    assert entry["task"] == "thumbnailer.tasks.send_daily_digest"
    assert entry["schedule"] == crontab(
        hour=settings.THUMBNAILER_DIGEST_HOUR, minute=settings.THUMBNAILER_DIGEST_MINUTE
    )
    assert {"summarize", "purge-expired", "requeue-stale-jobs"} <= set(app.conf.beat_schedule)
