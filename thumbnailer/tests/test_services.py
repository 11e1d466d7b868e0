"""Job services run in-process against real storage (a temporary MEDIA_ROOT) and the test DB."""

import functools
import hashlib
import io
import json
import os
import zipfile
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from thumbnailer import services, storage_io
from thumbnailer.models import Job

from .support import images

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def create_job(name="Holiday photo.jpg", data=None, boxes=((128, 128),)) -> Job:
    upload = images.upload(name, data if data is not None else images.jpeg_bytes((640, 480)))
    header = services.upload_inspect(upload=upload)
    return services.job_create(upload=upload, header=header, boxes=list(boxes), owner_key="visitor")


def read_zip(path: str) -> zipfile.ZipFile:
    with default_storage.open(path) as stored:
        return zipfile.ZipFile(io.BytesIO(stored.read()))


def test_job_process_writes_thumbnails_and_a_zip():
    original = images.jpeg_bytes((640, 480))
    job = create_job(data=original, boxes=[(128, 128), (64, 64)])
    progress = []

    services.job_process(job_id=job.id, on_progress=lambda done, total: progress.append((done, total)))

    job.refresh_from_db()
    folder = f"jobs/{job.id}"
    assert job.status == Job.Status.SUCCESS
    assert progress == [(1, 2), (2, 2)]
    assert job.thumbnails == [
        {
            "size": "128x128",
            "path": f"{folder}/Holiday_photo_128x128.jpg",
            "width": 128,
            "height": 96,
            "format": "JPEG",
            "mode": "fit",
            "bytes": default_storage.size(f"{folder}/Holiday_photo_128x128.jpg"),
        },
        {
            "size": "64x64",
            "path": f"{folder}/Holiday_photo_64x64.jpg",
            "width": 64,
            "height": 48,
            "format": "JPEG",
            "mode": "fit",
            "bytes": default_storage.size(f"{folder}/Holiday_photo_64x64.jpg"),
        },
    ]
    assert job.archive_path == f"{folder}/Holiday_photo.zip"
    assert job.deliveries == 1
    assert job.processing_ms is not None and job.started_at is not None and job.finished_at is not None

    archive = read_zip(job.archive_path)
    assert archive.namelist() == [
        "Holiday_photo.jpg",
        "Holiday_photo_128x128.jpg",
        "Holiday_photo_64x64.jpg",
        "manifest.json",
    ]
    assert archive.read("Holiday_photo.jpg") == original
    manifest = json.loads(archive.read("manifest.json"))
    thumb_bytes = archive.read("Holiday_photo_128x128.jpg")
    assert {
        "name": "Holiday_photo_128x128.jpg",
        "width": 128,
        "height": 96,
        "format": "JPEG",
        "bytes": len(thumb_bytes),
        "sha256": hashlib.sha256(thumb_bytes).hexdigest(),
        "mode": "fit",
    } in manifest["files"]


def test_a_duplicate_message_changes_nothing():
    job = create_job()
    services.job_process(job_id=job.id)
    job.refresh_from_db()
    before = (job.finished_at, job.deliveries, default_storage.open(job.archive_path).read())

    services.job_process(job_id=job.id)

    job.refresh_from_db()
    assert (job.finished_at, job.deliveries, default_storage.open(job.archive_path).read()) == before


def test_processing_again_gives_the_same_files():
    """A redelivered job (worker lost mid-way) rewrites the same names with the same bytes."""
    job = create_job()
    services.job_process(job_id=job.id)
    first_zip = default_storage.open(f"jobs/{job.id}/Holiday_photo.zip").read()
    Job.objects.filter(id=job.id).update(status=Job.Status.PENDING)

    services.job_process(job_id=job.id)

    _, files = default_storage.listdir(f"jobs/{job.id}")
    assert sorted(files) == ["Holiday_photo.jpg", "Holiday_photo.zip", "Holiday_photo_128x128.jpg"]
    assert default_storage.open(f"jobs/{job.id}/Holiday_photo.zip").read() == first_zip


def test_a_damaged_image_fails_with_a_readable_error():
    job = create_job(name="cut.jpg", data=images.truncated_jpeg())

    services.job_process(job_id=job.id)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILURE
    assert job.error_code == "corrupt_image"
    assert job.error_message
    assert job.archive_path == ""


def test_a_job_held_by_another_worker_is_not_processed_twice():
    job = create_job()
    services.job_claim(job_id=job.id)

    with pytest.raises(services.JobBusy) as busy:
        services.job_process(job_id=job.id)

    assert 80 < busy.value.retry_in <= 100
    assert Job.objects.get(id=job.id).deliveries == 1


@pytest.mark.parametrize("returns_rows", [True, False], ids=["update-returning", "update-then-read"])
def test_a_claim_returns_the_row_as_it_left_it_and_a_second_claim_is_busy(returns_rows, monkeypatch):
    """Also on a database that cannot return rows from an UPDATE (SQLite before 3.35)."""
    monkeypatch.setattr(services.lifecycle, "update_returns_rows", lambda connection: returns_rows)
    job = create_job()

    with CaptureQueriesContext(connection) as queries:
        claimed = services.job_claim(job_id=job.id)

    assert claimed == job and (claimed.status, claimed.deliveries) == (Job.Status.STARTED, 1)
    assert claimed.lease_expires_at == Job.objects.get(id=job.id).lease_expires_at
    assert ["RETURNING" in query["sql"] for query in queries if "UPDATE" in query["sql"]] == [returns_rows]
    with pytest.raises(services.JobBusy):
        services.job_claim(job_id=job.id)


def test_a_lapsed_lease_is_taken_over():
    job = create_job()
    services.job_claim(job_id=job.id)
    Job.objects.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    services.job_process(job_id=job.id)

    job.refresh_from_db()
    assert (job.status, job.deliveries) == (Job.Status.SUCCESS, 2)


def stored_files(job_id) -> dict[str, tuple[int, bytes]]:
    """Each file of a job folder: its inode (a rewrite, even of equal bytes, makes a new one) and bytes."""
    _, names = default_storage.listdir(f"jobs/{job_id}")
    return {
        name: (
            os.stat(default_storage.path(f"jobs/{job_id}/{name}")).st_ino,
            default_storage.open(f"jobs/{job_id}/{name}").read(),
        )
        for name in names
    }


def lease_time_passes(monkeypatch) -> None:
    """Every clock moves past the lease a claim takes now, as if its worker had been cut off that long."""
    later = timezone.now() + timedelta(seconds=services.lease_seconds() + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)


def test_a_worker_cut_off_past_its_lease_writes_nothing_over_the_finished_job(monkeypatch):
    """The cut-off worker comes back after another one finished the job: its writes are refused.

    Worker A claims the job and makes the thumbnails; before it writes them its lease lapses
    (it was cut off from the network), worker B claims the job and finishes it. Then A goes on.
    """
    job = create_job(boxes=[(128, 128), (64, 64)])
    finished: dict = {}

    def cut_off_then_back(done, total):
        if done < total:
            return
        lease_time_passes(monkeypatch)
        services.job_process(job_id=job.id)  # worker B
        finished["row"] = Job.objects.filter(id=job.id).values().get()
        finished["files"] = stored_files(job.id)

    services.job_process(job_id=job.id, on_progress=cut_off_then_back)  # worker A

    assert finished["row"]["status"] == Job.Status.SUCCESS
    assert finished["row"]["deliveries"] == 2
    assert Job.objects.filter(id=job.id).values().get() == finished["row"]
    assert stored_files(job.id) == finished["files"]
    assert sorted(finished["files"]) == [
        "Holiday_photo.jpg",
        "Holiday_photo.zip",
        "Holiday_photo_128x128.jpg",
        "Holiday_photo_64x64.jpg",
    ]


def test_a_worker_whose_lease_lapsed_records_nothing_even_if_no_one_took_over(monkeypatch):
    """Past its lease a worker's claim is void: it writes and records nothing; requeue_stale_jobs resends it."""
    job = create_job()

    def lease_lapses(done, total):
        lease_time_passes(monkeypatch)

    services.job_process(job_id=job.id, on_progress=lease_lapses)

    job.refresh_from_db()
    assert (job.status, job.thumbnails, job.archive_path, job.deliveries) == (Job.Status.STARTED, [], "", 1)
    assert default_storage.listdir(f"jobs/{job.id}") == ([], ["Holiday_photo.jpg"])


def test_within_its_hard_time_limit_a_worker_checks_its_lease_without_a_query(
    settings, django_assert_num_queries
):
    """No other worker can claim a job before its lease ends, so until the hard limit the worker's clock answers."""
    job = create_job()
    claimed = services.job_claim(job_id=job.id)
    check = functools.partial(
        services.job_holds_lease,
        job_id=job.id,
        deliveries=claimed.deliveries,
        lease_expires_at=claimed.lease_expires_at,
    )
    assert claimed.lease_expires_at - timezone.now() > timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT - 5)

    with django_assert_num_queries(0):
        assert check()
    # Within the last THUMBNAILER_LEASE_MARGIN_SECONDS (the clock skew allowed between hosts) the row answers.
    Job.objects.filter(id=job.id).update(deliveries=F("deliveries") + 1)  # another worker's claim
    within_margin = claimed.lease_expires_at - timedelta(
        seconds=settings.THUMBNAILER_LEASE_MARGIN_SECONDS / 2
    )
    with pytest.MonkeyPatch.context() as patch, django_assert_num_queries(1):
        patch.setattr(timezone, "now", lambda: within_margin)
        assert not check()


def test_a_worker_taken_over_before_recording_does_not_record():
    """The lease is checked again in the UPDATE that records SUCCESS, after the files are written."""
    job = create_job()
    real_write = storage_io.write_exact

    def write_then_lose_the_lease(path, content):
        written = real_write(path, content)
        if path.endswith(".zip"):
            Job.objects.filter(id=job.id).update(deliveries=F("deliveries") + 1)  # another worker's claim
        return written

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage_io, "write_exact", write_then_lose_the_lease)
        services.job_process(job_id=job.id)

    job.refresh_from_db()
    assert (job.status, job.archive_path, job.deliveries) == (Job.Status.STARTED, "", 2)


def test_a_failure_recorded_for_an_earlier_claim_leaves_the_later_one_alone(monkeypatch):
    """A worker back from a cut whose time limit then fires: the job another worker claimed stays its."""
    job = create_job()
    stale = services.Claim()
    services.job_process(
        job_id=job.id, claim=stale, on_progress=lambda done, total: lease_time_passes(monkeypatch)
    )
    taken_over = services.job_claim(job_id=job.id)  # the lease lapsed: another worker claims

    services.job_fail(job_id=job.id, code="timeout", message="too long", deliveries=stale.deliveries)

    job.refresh_from_db()
    assert (stale.deliveries, taken_over.deliveries) == (1, 2)
    assert (job.status, job.deliveries, job.error_code) == (Job.Status.STARTED, 2, "")
    services.job_fail(job_id=job.id, code="timeout", message="too long", deliveries=2)
    assert Job.objects.get(id=job.id).status == Job.Status.FAILURE


def test_a_job_that_keeps_killing_workers_fails_cleanly(settings):
    job = create_job()
    Job.objects.filter(id=job.id).update(deliveries=settings.THUMBNAILER_MAX_DELIVERIES)

    services.job_process(job_id=job.id)

    job.refresh_from_db()
    assert (job.status, job.error_code) == (Job.Status.FAILURE, "worker_lost")
    assert job.error_message == "Processing this image stopped the worker 3 times; giving up."


def test_purge_expired_deletes_old_files_and_keeps_recent_ones(settings):
    old, recent = create_job(name="old.jpg"), create_job(name="new.jpg")
    services.job_process(job_id=old.id)
    Job.objects.filter(id=old.id).update(
        created_at=timezone.now() - settings.THUMBNAILER_JOB_RETENTION - timedelta(hours=1)
    )

    assert services.jobs_purge_expired(batch_size=1) == 1

    assert not default_storage.exists(f"jobs/{old.id}/old.jpg")
    assert not default_storage.exists(f"jobs/{old.id}")
    assert Job.objects.get(id=old.id).expired_at is not None
    assert default_storage.exists(recent.original_path)
    assert Job.objects.get(id=recent.id).expired_at is None


def test_requeue_stale_jobs_sends_only_the_stale_ones(redis_server, settings):
    redis_server.client().flushall()
    stale, fresh, done = create_job(), create_job(), create_job()
    long_ago = timezone.now() - timedelta(seconds=settings.THUMBNAILER_STALE_AFTER_SECONDS + 5)
    Job.objects.filter(id=stale.id).update(sent_at=long_ago)
    Job.objects.filter(id=fresh.id).update(sent_at=timezone.now())
    Job.objects.filter(id=done.id).update(sent_at=long_ago, status=Job.Status.SUCCESS)

    assert services.jobs_requeue_stale() == 1

    queued = [json.loads(raw)["headers"]["id"] for raw in redis_server.client().lrange("celery", 0, -1)]
    assert queued == [str(stale.id)]
    assert Job.objects.get(id=stale.id).sent_at > long_ago


def test_a_published_job_message_carries_the_argument_reprs_celery_would_have_written(redis_server):
    """job_publish gives the reprs itself: they must read as Celery's saferepr writes them (Flower, logs)."""
    from celery.utils.saferepr import saferepr

    redis_server.client().flushall()
    job = create_job()
    services.job_publish(job_id=job.id)

    [raw] = redis_server.client().lrange("celery", 0, -1)
    headers = json.loads(raw)["headers"]
    assert (headers["id"], headers["task"]) == (str(job.id), services.MAKE_THUMBNAILS)
    assert (headers["argsrepr"], headers["kwargsrepr"]) == (saferepr([str(job.id)]), saferepr({}))


def test_a_webhook_the_broker_refused_at_the_end_of_its_job_is_queued_by_the_requeue_task(
    redis_server, monkeypatch
):
    """The job ended while the broker was away: its webhook is marked, then sent once Redis is back."""
    redis_server.client().flushall()
    job = create_job()
    Job.objects.filter(id=job.id).update(
        callback_url="http://127.0.0.1:9/hook", webhook_status=Job.WebhookStatus.PENDING
    )
    with monkeypatch.context() as broker_down:
        # What kombu raises when Redis cannot be reached (test_faults shows it for uploads).
        broker_down.setattr(
            services.callbacks.current_app,
            "send_task",
            lambda *args, **kwargs: (_ for _ in ()).throw(BrokerError("Error 111 connecting")),
        )
        services.job_process(job_id=job.id)
    job.refresh_from_db()
    assert (job.status, job.webhook_status) == (Job.Status.SUCCESS, Job.WebhookStatus.PENDING)
    assert job.webhook_last_error == "not queued: Error 111 connecting"

    assert services.jobs_requeue_stale() == 0  # no job to resend, one webhook

    queued = [json.loads(raw)["headers"] for raw in redis_server.client().lrange("celery", 0, -1)]
    assert [(headers["task"], headers["argsrepr"]) for headers in queued] == [
        (services.DELIVER_WEBHOOK, repr([str(job.id)]))
    ]
    assert Job.objects.get(id=job.id).webhook_last_error == ""
    assert services.jobs_requeue_stale() == 0
    assert redis_server.client().llen("celery") == 1, "a queued webhook is not queued again"


# --- Repeats: the same bytes and options again, answered without a worker --------------------


def finished_job(name: str, data: bytes, boxes=((128, 128), (64, 64))) -> Job:
    """A job made the worker's way, SUCCESS, with the digest the upload handler would have taken."""
    job = create_job(name=name, data=data, boxes=boxes)
    Job.objects.filter(id=job.id).update(sha256=hashlib.sha256(data).hexdigest())
    services.job_process(job_id=job.id)
    return Job.objects.get(id=job.id)


def submit_repeat(name: str, data: bytes, boxes=((128, 128), (64, 64))) -> Job:
    upload = images.upload(name, data)
    header = services.upload_inspect(upload=upload)
    job = services.job_submit(
        upload=upload, header=header, boxes=list(boxes), owner_key="", sha256=hashlib.sha256(data).hexdigest()
    )
    return Job.objects.get(id=job.id)


def stored_zip_listing(job: Job) -> dict:
    archive = read_zip(job.archive_path)
    manifest = json.loads(archive.read("manifest.json"))
    return {"members": archive.namelist(), "names": [entry["name"] for entry in manifest["files"]]}


def test_a_repeat_is_answered_at_once_from_the_earlier_result_with_files_of_its_own():
    data = images.jpeg_bytes((640, 480))
    first = finished_job("Holiday photo.jpg", data)

    repeat = submit_repeat("beach.jpg", data)

    folder = f"jobs/{repeat.id}"
    assert (repeat.status, repeat.repeat_of_id, repeat.sent_at) == (Job.Status.SUCCESS, first.id, None)
    assert [entry["path"] for entry in repeat.thumbnails] == [
        f"{folder}/beach_128x128.jpg",
        f"{folder}/beach_64x64.jpg",
    ]
    assert [{**entry, "path": ""} for entry in repeat.thumbnails] == [
        {**entry, "path": ""} for entry in first.thumbnails
    ]
    for mine, theirs in zip(repeat.thumbnails, first.thumbnails, strict=True):
        assert default_storage.open(mine["path"]).read() == default_storage.open(theirs["path"]).read()
    assert repeat.archive_path == f"{folder}/beach.zip"
    assert stored_zip_listing(repeat) == {
        "members": ["beach.jpg", "beach_128x128.jpg", "beach_64x64.jpg", "manifest.json"],
        "names": ["beach.jpg", "beach_128x128.jpg", "beach_64x64.jpg"],
    }
    assert read_zip(repeat.archive_path).read("beach.jpg") == data


@pytest.mark.parametrize(
    "change",
    ["other sizes", "other bytes", "earlier job expired", "earlier job failed"],
)
def test_only_an_unexpired_success_with_the_same_bytes_and_sizes_is_a_repeat(change, parked_jobs):
    data = images.jpeg_bytes((640, 480))
    first = finished_job("first.jpg", data)
    boxes = ((128, 128), (64, 64))
    if change == "other sizes":
        boxes = ((128, 128),)
    elif change == "other bytes":
        data = images.jpeg_bytes((640, 480), color=(0, 0, 255))
    elif change == "earlier job expired":
        Job.objects.filter(id=first.id).update(expired_at=timezone.now())
    else:
        Job.objects.filter(id=first.id).update(status=Job.Status.FAILURE)

    job = submit_repeat("second.jpg", data, boxes=boxes)

    assert (job.status, job.repeat_of_id) == (Job.Status.PENDING, None)
    assert job.sent_at is not None


@pytest.mark.parametrize("gone", ["earlier", "repeat"])
def test_purging_either_job_leaves_the_other_whole(gone, settings):
    data = images.jpeg_bytes((640, 480))
    first = finished_job("first.jpg", data)
    repeat = submit_repeat("second.jpg", data)
    purged, kept = (first, repeat) if gone == "earlier" else (repeat, first)
    Job.objects.filter(id=purged.id).update(
        created_at=timezone.now() - settings.THUMBNAILER_JOB_RETENTION - timedelta(hours=1)
    )

    assert services.jobs_purge_expired() == 1

    assert not default_storage.exists(f"jobs/{purged.id}")
    assert read_zip(kept.archive_path).read(kept.original_path.rsplit("/", 1)[-1]) == data
    assert all(default_storage.exists(entry["path"]) for entry in kept.thumbnails)


def test_a_repeat_whose_earlier_files_just_vanished_is_made_by_a_worker(parked_jobs):
    data = images.jpeg_bytes((640, 480))
    first = finished_job("first.jpg", data)
    default_storage.delete(first.thumbnails[0]["path"])  # deleted between the lookup and the copy

    job = submit_repeat("second.jpg", data)

    assert (job.status, job.repeat_of_id) == (Job.Status.PENDING, None)
    assert job.sent_at is not None


def test_a_job_deleted_while_its_thumbnails_are_made_keeps_no_file_and_no_result():
    job = create_job(boxes=[(128, 128), (64, 64)])

    def delete_after_first_size(done, total):
        if done == 1:
            services.job_delete(job_id=job.id)

    services.job_process(job_id=job.id, on_progress=delete_after_first_size)

    job.refresh_from_db()
    assert (job.status, job.thumbnails, job.archive_path) == (Job.Status.STARTED, [], "")
    assert job.deleted_at is not None
    assert not default_storage.exists(f"jobs/{job.id}")


def test_a_missing_original_fails_the_job_with_a_message_instead_of_retrying():
    job = create_job()
    default_storage.delete(job.original_path)

    services.job_process(job_id=job.id)

    job.refresh_from_db()
    assert (job.status, job.error_code, job.error_message) == (
        Job.Status.FAILURE,
        "original_missing",
        "The uploaded original is no longer in storage.",
    )
