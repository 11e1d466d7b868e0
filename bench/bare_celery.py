"""The bare-Celery baseline of `make loadtest`: the product's pipeline with nothing around it.

One Celery app on a private Redis (BARE_CELERY_REDIS_URL) and one task that makes the
128x128 thumbnail and the zip of one image with the same functions the product's worker
calls (thumbnailer.imaging, thumbnailer.naming), writing the zip into memory: no Django, no
database, no storage, no HTTP. Run its worker as the product's is run:

    BARE_CELERY_REDIS_URL=redis://127.0.0.1:PORT/0 celery -A bench.bare_celery worker -c 2

The message carries the path of a file the load client wrote before the clock started, not
the image itself: the product's message carries only a job id and its worker reads the
original from disk, so both pay for one file read and neither for pushing the image through
Redis and JSON. The baseline keeps the product's delivery guarantee (acks_late), since the
comparison is about overhead, not about dropping guarantees.
"""

from __future__ import annotations

import functools
import io
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery

from thumbnailer import imaging, limits, naming

BOX = (128, 128)
# The product's limits, read as its settings read them (without Django).
MAX_PIXELS = limits.max_pixels()
MAX_FRAMES = limits.max_frames()

# Not the current app: in a process that also sends the product's jobs (the tests) those must
# keep going to the product's broker.
app = Celery("bare_celery", set_as_current=False)
app.conf.update(
    broker_url=os.environ.get("BARE_CELERY_REDIS_URL", "redis://127.0.0.1:6379/15"),
    result_backend=os.environ.get("BARE_CELERY_REDIS_URL", "redis://127.0.0.1:6379/15"),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bare_celery.make_thumbnail")
def make_thumbnail(path: str) -> dict:
    """The product's pipeline on one file: thumbnail and zip, kept in memory; facts back."""
    original_data = Path(path).read_bytes()
    rendered = imaging.make_renditions(
        io.BytesIO(original_data), boxes=[BOX], max_pixels=MAX_PIXELS, max_frames=MAX_FRAMES
    )
    package = imaging.package_renditions(
        original_data,
        rendered,
        original_name="photo.jpg",
        thumbnail_name=functools.partial(naming.thumbnail_name, "photo"),
    )
    archive = io.BytesIO()
    package.write_archive(archive)
    [thumbnail] = package.thumbnails
    return {
        "original_bytes": len(original_data),
        "thumbnail": [thumbnail.name, thumbnail.width, thumbnail.height, thumbnail.format],
        "archive_bytes": archive.tell(),
    }


@dataclass
class BareRecord:
    """One baseline job from the client's side; `error` is empty when its result checked out."""

    client: int
    number: int
    latency_seconds: float | None = None
    error: str = ""


@dataclass
class BareReport:
    clients: int
    uploads_per_client: int
    wall_seconds: float
    records: list[BareRecord] = field(default_factory=list)

    @property
    def succeeded(self) -> list[BareRecord]:
        return [record for record in self.records if not record.error]

    @property
    def errors(self) -> int:
        return len(self.records) - len(self.succeeded)

    @property
    def jobs_per_second(self) -> float:
        return len(self.succeeded) / self.wall_seconds if self.wall_seconds else 0.0


def run_client(client: int, paths: list[Path], *, job_timeout: float, deadline: float) -> list[BareRecord]:
    """Send one job at a time and wait for its result, as the product's clients wait for SUCCESS."""
    records = []
    for number, path in enumerate(paths):
        record = BareRecord(client=client, number=number)
        records.append(record)
        started = time.monotonic()
        if started > deadline:
            record.error = "not sent: the run's deadline passed"
            continue
        try:
            result = make_thumbnail.delay(str(path)).get(timeout=min(job_timeout, deadline - started))
        except Exception as error:  # any failure is this job's error, reported with the others
            record.error = f"job failed: {error!r}"
            continue
        record.latency_seconds = time.monotonic() - started
        expected = {
            "original_bytes": path.stat().st_size,
            "thumbnail": ["photo_128x128.jpg", 128, 96, "JPEG"],
        }
        if {key: result.get(key) for key in expected} != expected or not result.get("archive_bytes"):
            record.error = f"wrong result: {result}"
    return records


def run_bare_load(
    paths_by_client: list[list[Path]], *, job_timeout: float = 60.0, run_timeout: float = 240.0
) -> BareReport:
    """Every client's jobs at once, one thread per client; bounded by run_timeout."""
    started = time.monotonic()
    deadline = started + run_timeout
    results: dict[int, list[BareRecord]] = {}

    def client_thread(client: int) -> None:
        results[client] = run_client(
            client, paths_by_client[client], job_timeout=job_timeout, deadline=deadline
        )

    threads = [
        threading.Thread(target=client_thread, args=(client,)) for client in range(len(paths_by_client))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + job_timeout)
    return BareReport(
        clients=len(paths_by_client),
        uploads_per_client=max((len(paths) for paths in paths_by_client), default=0),
        wall_seconds=time.monotonic() - started,
        records=[record for client in sorted(results) for record in results[client]],
    )
