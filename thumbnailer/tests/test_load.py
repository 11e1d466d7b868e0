"""Many clients at once against the real stack (gunicorn + Celery worker + Redis), bounded in time.

The same client code as `make loadtest` (scripts/loadtest.py) drives a private stack: every
upload must be accepted and finish SUCCESS, nothing may answer 5xx, and no two jobs may
share a file even though every client names its file the same. The measurements of
`make loadtest` (the product as `make run` starts it, and the bare-Celery baseline) run small.
"""

import hashlib

import pytest
from django.core.files.storage import default_storage

from scripts import loadtest
from scripts.loadtest import make_images, measure_bare_celery, measure_product, run_load
from thumbnailer.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLIENTS = 20
UPLOADS_PER_CLIENT = 10


def job_files(job: Job) -> list[str]:
    return [job.original_path, *(thumb["path"] for thumb in job.thumbnails), job.archive_path]


def test_twenty_clients_uploading_ten_images_each_all_succeed(private_stack):
    """All 200 uploads are accepted and end SUCCESS; each job keeps its own image in its own folder."""
    web = private_stack.web()
    private_stack.worker(concurrency=2)

    report = run_load(
        web.url,
        clients=CLIENTS,
        uploads=UPLOADS_PER_CLIENT,
        job_timeout=120,
        run_timeout=180,
    )
    print("\n".join(report.summary_lines()))

    assert [record.error for record in report.records if record.error] == []
    assert report.server_errors == 0
    # 201: the job ended while the upload waited (`Prefer: wait`); 202: the client waited after.
    assert {record.upload_status for record in report.records} <= {201, 202}
    assert len(report.succeeded) == CLIENTS * UPLOADS_PER_CLIENT

    task_ids = [record.task_id for record in report.records]
    jobs = {str(job.id): job for job in Job.objects.filter(id__in=task_ids)}
    assert len(jobs) == CLIENTS * UPLOADS_PER_CLIENT
    every_file = [path for job in jobs.values() for path in job_files(job)]
    assert len(every_file) == len(set(every_file)), "two jobs share a file"
    for job in jobs.values():
        folder = f"jobs/{job.id}"
        assert sorted(default_storage.listdir(folder)[1]) == sorted(
            path.removeprefix(f"{folder}/") for path in job_files(job)
        )
        assert [path.rsplit("/", 1)[-1] for path in job_files(job)] == [
            "photo.jpg",
            "photo_128x128.jpg",
            "photo.zip",
        ]
    for record in report.records:
        with default_storage.open(jobs[record.task_id].original_path) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == record.sha256, "a job holds another's image"


SMALL_IMAGE = (800, 600)


def test_make_loadtest_measures_the_product_as_make_run_starts_it(tmp_path):
    """The product's own stack takes every upload; CPU, statements and Redis commands are counted per job."""
    measured = measure_product(
        tmp_path / "full", make_images(2, 3, SMALL_IMAGE), make_images(1, 1, SMALL_IMAGE, first_client=2)
    )

    assert (measured.errors, measured.costs.jobs) == (0, 6)
    assert set(measured.costs.cpu_ms) == {
        "gunicorn",
        "worker main",
        "worker pool",
        "beat",
        "redis",
        "load client",
    }
    assert measured.costs.cpu_ms["gunicorn"] > 0
    assert measured.costs.cpu_ms["worker pool"] > 0
    assert measured.costs.statements["gunicorn"] > 0
    assert measured.costs.writes["worker pool"] > 0
    assert measured.costs.redis_commands["lpush"] == 6  # one message per job


def test_make_loadtest_measures_the_bare_celery_baseline(tmp_path):
    """The baseline runs the same pipeline in a bare Celery worker; every result is checked and costed."""
    measured = measure_bare_celery(
        tmp_path / "bare", make_images(2, 3, SMALL_IMAGE), make_images(1, 1, SMALL_IMAGE, first_client=2)
    )

    assert (measured.errors, measured.costs.jobs) == (0, 6)
    assert set(measured.costs.cpu_ms) == {"worker main", "worker pool", "redis", "load client"}
    assert measured.costs.cpu_ms["worker pool"] > 0
    assert measured.costs.statements == {}
    assert measured.costs.redis_commands["lpush"] == 6


def test_make_loadtest_names_the_filesystem_its_files_go_to(tmp_path):
    """The run says what holds its database and media: the deepest mount above the folder."""
    assert loadtest.filesystem_type("/proc/self") == "proc"
    assert loadtest.filesystem_type(str(tmp_path)) == loadtest.filesystem_type(str(tmp_path.parent))
    assert loadtest.filesystem_type(str(tmp_path)) not in {"proc", "unknown"}


def test_make_loadtest_keeps_its_files_in_ram_only_on_a_tmpfs_with_room(monkeypatch, tmp_path):
    """/dev/shm when it is a tmpfs with room, else None: the system's temporary folder."""
    monkeypatch.setattr(loadtest, "RAM_SCRATCH", tmp_path)
    if loadtest.filesystem_type(str(tmp_path)) != "tmpfs":
        assert loadtest.ram_scratch() is None
    monkeypatch.setattr(loadtest, "filesystem_type", lambda path: "tmpfs")
    assert loadtest.ram_scratch() == str(tmp_path)
    monkeypatch.setattr(loadtest, "RAM_SCRATCH_MIN_FREE_BYTES", 2**62)
    assert loadtest.ram_scratch() is None
