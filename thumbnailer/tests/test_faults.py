"""No accepted job is lost: real workers killed with SIGKILL, Redis restarted empty, storage failing.

Each test that kills something runs on a private stack (its own Redis, media folder, web server,
worker and beat), so the session's worker never takes its jobs. Limits are shortened from the
environment (time limits, lease margin, requeue interval) so every test finishes in seconds.
"""

import functools
import html
import io
import os
import shutil
import signal
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from thumbnailer import services
from thumbnailer.models import Job

from .support import images
from .support.http import get_status, post_form, post_image
from .support.polling import wait_for_job, wait_for_jobs, wait_until
from .support.processes import child_pids

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# A 36 MP PNG (no shrink-on-load for PNG) asked for several large thumbnails takes about
# half a second per size on one core: a real input slow enough to be killed mid-way.
SLOW_SIZES = ",".join(f"{side}x{side}" for side in range(2048, 2000, -8))  # 6 sizes, ~3 s
# Short limits for the processes these tests start; the soft limit stays well above the
# slow job's run time (about 3 s, 9 s on a machine loaded three times over, where 8 s once
# failed it as a timeout), and the lease (hard limit + margin) bounds how long a dead
# worker's job waits before another worker takes it over.
FAST_LIMITS = {
    "THUMBNAILER_SOFT_TIME_LIMIT": 15,
    "THUMBNAILER_HARD_TIME_LIMIT": 17,
    "THUMBNAILER_LEASE_MARGIN_SECONDS": 1,
}
FINISH_WITHIN_SECONDS = 90


@functools.cache
def slow_png() -> bytes:
    return images.encode(Image.linear_gradient("L").resize((6000, 6000)).convert("RGB"), "PNG")


def upload(web, name: str, data: bytes, **options) -> str:
    reply = post_image(web.url, name, data, **options)
    assert reply.status == 202, reply.text
    return reply.json["task_id"]


def wait_until_running(web, task_id: str) -> None:
    """Wait until a worker reports progress on the job: it is being processed right now."""
    wait_for_job(web.url, task_id, states=("PROGRESS",), interval=0.05)


def finished_jobs(server, task_ids: list[str], *, timeout: float = FINISH_WITHIN_SECONDS) -> dict[str, Job]:
    """The Job rows, once the status of every one says it is finished."""
    wait_for_jobs(server, task_ids, timeout=timeout, interval=0.2)
    return {str(job.id): job for job in Job.objects.filter(id__in=task_ids)}


def assert_complete(job: Job, original: bytes) -> None:
    """A finished job has its original byte for byte and a zip of original + thumbnails + manifest."""
    assert job.status == Job.Status.SUCCESS, (job.error_code, job.error_message)
    with default_storage.open(job.original_path) as stored:
        assert stored.read() == original
    with default_storage.open(job.archive_path) as stored:
        archive = zipfile.ZipFile(io.BytesIO(stored.read()))
    original_name = job.original_path.rsplit("/", 1)[-1]
    thumbnail_names = [thumb["path"].rsplit("/", 1)[-1] for thumb in job.thumbnails]
    assert archive.namelist() == [original_name, *thumbnail_names, "manifest.json"]
    assert archive.testzip() is None
    assert archive.read(original_name) == original


def test_killing_a_pool_child_mid_task_loses_no_job(private_stack):
    """SIGKILL a pool process while it makes thumbnails: the job is redelivered and ends SUCCESS."""
    web = private_stack.web()
    worker = private_stack.worker(concurrency=1, **FAST_LIMITS)
    slow_id = upload(web, "big.png", slow_png(), sizes=SLOW_SIZES)
    quick = images.jpeg_bytes()
    quick_id = upload(web, "quick.jpg", quick)

    wait_until_running(web, slow_id)
    [child] = child_pids(worker.process.pid)
    os.kill(child, signal.SIGKILL)

    jobs = finished_jobs(web.url, [slow_id, quick_id])
    assert_complete(jobs[slow_id], slow_png())
    assert_complete(jobs[quick_id], quick)
    assert jobs[slow_id].deliveries == 2
    assert "exited prematurely: signal 9 (SIGKILL)" in worker.log()
    # The message came straight back, and waited for the dead process's lease to lapse.
    assert f"make_thumbnails[{slow_id}] retry: Retry in" in worker.log()
    assert worker.process.poll() is None


def test_killing_the_main_worker_process_loses_no_job(private_stack):
    """SIGKILL the worker itself with jobs running and queued: a new worker finishes every one.

    The dead worker's messages stay unacked in Redis; the running jobs come back when their
    lease lapses and beat's requeue_stale_jobs sends them again, the queued ones directly.
    """
    web = private_stack.web()
    requeue_soon = {**FAST_LIMITS, "THUMBNAILER_STALE_AFTER_SECONDS": 2}
    first = private_stack.worker("first", concurrency=2, **requeue_soon)
    slow_ids = [upload(web, f"big{n}.png", slow_png(), sizes=SLOW_SIZES) for n in range(2)]
    originals = dict.fromkeys(slow_ids, slow_png())
    for n in range(3):
        data = images.jpeg_bytes(color=(n * 60, 10, 10))
        originals[upload(web, f"quick{n}.jpg", data)] = data
    for slow_id in slow_ids:
        wait_until_running(web, slow_id)

    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    private_stack.beat(REQUEUE_INTERVAL_SECONDS=1)
    second = private_stack.worker("second", concurrency=2, **requeue_soon)

    jobs = finished_jobs(web.url, list(originals))
    for task_id, original in originals.items():
        assert_complete(jobs[task_id], original)
    assert {task_id: jobs[task_id].deliveries for task_id in originals} == {
        task_id: 2 if task_id in slow_ids else 1 for task_id in originals
    }
    assert "requeued" in second.log()


def test_an_input_that_keeps_killing_its_worker_fails_cleanly(private_stack):
    """Past THUMBNAILER_MAX_DELIVERIES lost deliveries the job fails with a readable error, no loop."""
    web = private_stack.web()
    worker = private_stack.worker(concurrency=1, THUMBNAILER_MAX_DELIVERIES=1, **FAST_LIMITS)
    slow_id = upload(web, "killer.png", slow_png(), sizes=SLOW_SIZES)
    wait_until_running(web, slow_id)

    [child] = child_pids(worker.process.pid)
    os.kill(child, signal.SIGKILL)

    finished_jobs(web.url, [slow_id])
    assert get_status(web.url, slow_id).json == {
        "task_id": slow_id,
        "task_status": "FAILURE",
        "error": {
            "code": "worker_lost",
            "message": "Processing this image stopped the worker 1 time; giving up.",
        },
    }
    assert worker.process.poll() is None


def test_redis_restarted_empty_with_jobs_queued_loses_none(private_stack):
    """Redis loses its queue (no persistence): beat's requeue_stale_jobs sends every pending job again."""
    web = private_stack.web()
    requeue_soon = {**FAST_LIMITS, "THUMBNAILER_STALE_AFTER_SECONDS": 2}
    worker = private_stack.worker(concurrency=1, **requeue_soon)
    slow_id = upload(web, "big.png", slow_png(), sizes=SLOW_SIZES)
    originals = {slow_id: slow_png()}
    wait_until_running(web, slow_id)
    for n in range(4):
        data = images.jpeg_bytes(color=(10, n * 60, 10))
        originals[upload(web, f"queued{n}.jpg", data)] = data
    assert private_stack.queued() == 4

    private_stack.redis.restart_empty()
    assert private_stack.queued() == 0
    private_stack.beat(REQUEUE_INTERVAL_SECONDS=1)
    after = images.jpeg_bytes(color=(1, 2, 3))
    originals[upload(web, "after.jpg", after)] = after

    jobs = finished_jobs(web.url, list(originals))
    for task_id, original in originals.items():
        assert_complete(jobs[task_id], original)
    assert "requeued 4 stale job(s)" in worker.log()


def test_broker_down_at_upload_is_503_and_nothing_is_kept(private_stack, media_root):
    """With Redis stopped the API and the form answer 503 (Retry-After), and keep no file or row."""
    web = private_stack.web()
    before = upload(web, "before.jpg", images.jpeg_bytes())
    folders_before = sorted(path.name for path in (media_root / "jobs").iterdir())
    private_stack.redis.stop()

    started = time.monotonic()
    api = post_image(web.url, "photo.jpg", images.jpeg_bytes())
    api_seconds = time.monotonic() - started
    form = post_form(web.url, [("photo.jpg", images.jpeg_bytes())])

    assert (api.status, api.headers["Retry-After"], api.json) == (
        503,
        "30",
        {
            "error": {
                "code": "queue_unavailable",
                "message": (
                    "The thumbnail queue is not available right now; nothing was stored. Please try again in a minute."
                ),
            }
        },
    )
    assert api_seconds < 10
    assert form.status == 503
    assert form.headers["Retry-After"] == "30"
    assert (
        "photo.jpg: The thumbnail queue is not available right now; nothing was stored. Please try again in a minute."
        in html.unescape(form.text)
    )
    assert list(Job.objects.values_list("id", flat=True)) == [uuid.UUID(before)]
    assert sorted(path.name for path in (media_root / "jobs").iterdir()) == folders_before

    private_stack.redis.start()
    assert post_image(web.url, "photo.jpg", images.jpeg_bytes()).status == 202


@pytest.mark.parametrize(
    "limits, worker_says",
    [
        (
            {"THUMBNAILER_SOFT_TIME_LIMIT": 1, "THUMBNAILER_HARD_TIME_LIMIT": 30},
            "Soft time limit (1s) exceeded",
        ),
        # No soft limit: the pool process is killed, and the worker records the failure itself.
        (
            {"THUMBNAILER_SOFT_TIME_LIMIT": 0, "THUMBNAILER_HARD_TIME_LIMIT": 2},
            "Hard time limit (2s) exceeded",
        ),
    ],
    ids=["soft limit", "hard limit"],
)
def test_a_job_over_its_time_limit_fails_as_timeout_and_the_worker_goes_on(
    private_stack, limits, worker_says
):
    """Past the time limit the job is a FAILURE 'timeout'; the next job still succeeds."""
    web = private_stack.web()
    worker = private_stack.worker(concurrency=1, **limits)
    slow_id = upload(web, "huge.png", slow_png(), sizes=",".join([SLOW_SIZES] * 3))
    quick = images.jpeg_bytes()
    quick_id = upload(web, "next.jpg", quick)

    jobs = finished_jobs(web.url, [slow_id, quick_id], timeout=60)

    assert get_status(web.url, slow_id).json == {
        "task_id": slow_id,
        "task_status": "FAILURE",
        "error": {"code": "timeout", "message": "Making the thumbnails took too long and was stopped."},
    }
    assert_complete(jobs[quick_id], quick)
    assert worker_says in worker.log()
    assert worker.process.poll() is None


# The next tests need no private stack: nothing is killed, so the session's worker serves them.


def test_a_transient_storage_error_is_retried_then_succeeds(client, celery_worker_process):
    """Storage refusing a write (here: a directory squatting a thumbnail's name) is retried with backoff.

    Three failed attempts in a row would use up THUMBNAILER_MAX_DELIVERIES (3) if retries
    counted as lost deliveries; they do not, so the job waits in RETRY, never FAILURE.
    """
    original = images.jpeg_bytes()
    upload_file = images.upload("photo.jpg", original)
    header = services.upload_inspect(upload=upload_file)
    job = services.job_create(upload=upload_file, header=header, boxes=[(128, 128)], owner_key="")
    # In the session's media folder: the session's worker writes there.
    squatter = Path(default_storage.path(f"jobs/{job.id}/photo_128x128.jpg"))
    (squatter / "occupied").mkdir(parents=True)
    services.job_send(job_id=job.id)

    def failed_three_times():
        row = Job.objects.get(id=job.id)
        assert row.status != Job.Status.FAILURE, row.error_message
        return celery_worker_process.log().count(f"transient error on job {job.id}") >= 3

    wait_until(failed_three_times, timeout=30, interval=0.02, message="three transient failures")
    shutil.rmtree(squatter)

    jobs = finished_jobs(client, [str(job.id)], timeout=60)
    assert_complete(jobs[str(job.id)], original)
    assert jobs[str(job.id)].deliveries == 1
    assert (
        f"transient error on job {job.id}: IsADirectoryError(21, 'Is a directory')"
        in celery_worker_process.log()
    )


def test_a_bad_image_fails_once_and_is_never_retried(client, celery_worker_process):
    """A damaged image is bad input, not bad luck: one attempt, a readable FAILURE, no retry."""
    response = client.post("/api/jobs/", {"image_file": images.upload("cut.jpg", images.truncated_jpeg())})
    task_id = response.json()["task_id"]

    jobs = finished_jobs(client, [task_id], timeout=30)

    assert client.get(f"/task/{task_id}/").json() == {
        "task_id": task_id,
        "task_status": "FAILURE",
        "error": {
            "code": "corrupt_image",
            "message": "The image is damaged or truncated and could not be read.",
        },
    }
    assert jobs[task_id].deliveries == 1
    assert f"make_thumbnails[{task_id}] retry" not in celery_worker_process.log()
    assert f"transient error on job {task_id}" not in celery_worker_process.log()
