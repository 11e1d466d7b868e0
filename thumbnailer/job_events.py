"""Word that a job has ended, from the process that recorded it to status requests waiting for it.

`GET /task/<id>/?wait=N` (and an upload with `Prefer: wait=N`) holds its answer until the job
finishes, or N seconds pass, so a client learns the outcome when it happens instead of on its
next poll. The worker that records
a job's SUCCESS or FAILURE (or the request that deletes it) publishes the job id on one channel
of the result backend's Redis once its transaction commits. Each web process has one subscriber
thread on that channel, started on first use, which wakes the requests waiting for that job.

The word is a hint, never the answer: the answer is always the Job row, and a waiting request
reads the row again at least every RECHECK_SECONDS, so a message lost to a Redis outage or a
reconnect costs at most that much latency.
"""

import contextlib
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator

from celery import current_app
from django.conf import settings
from django.db import transaction

from . import selectors
from .models import Job

logger = logging.getLogger(__name__)

CHANNEL = "thumbnailer:job-ended"
# The longest a request may wait: under the 30 s after which proxies and gunicorn's graceful
# shutdown give up on a request. A longer ?wait= or `Prefer: wait` is shortened to this.
MAX_WAIT_SECONDS = 25.0
# How often a waiting request reads its job again without word from Redis.
RECHECK_SECONDS = 1.0
# The pause before the subscriber subscribes again after losing Redis.
RESUBSCRIBE_SECONDS = 1.0


def redis_client():
    """The result backend's redis-py client (its pool, timeouts and TLS); None if it is not Redis."""
    return getattr(current_app.backend, "client", None)


def job_ended_announce(*, job_id) -> None:
    """Wake the requests waiting for job_id once the transaction that ended it commits."""
    transaction.on_commit(functools.partial(_publish, str(job_id)))


def _publish(job_id: str) -> None:
    client = redis_client()
    if client is None:
        return
    try:
        client.publish(CHANNEL, job_id)
    except Exception as error:  # a hint only: waiting requests read the row again soon anyway
        logger.info("job %s: its end was not announced: %r", job_id, error)


def job_wait(*, job_id, timeout: float) -> Job | None:
    """The job once it has ended (finished, deleted or expired), or as it stands after `timeout` s.

    None when there is no such job.
    """
    deadline = time.monotonic() + timeout
    # Keyed as announced: a URL may spell the id in capitals or without hyphens.
    with subscriber.watching(str(uuid.UUID(str(job_id)))) as ended:
        while True:
            ended.clear()  # before the read: word that comes during it is not lost
            job = selectors.job_get(job_id=job_id)
            remaining = deadline - time.monotonic()
            if job is None or job.status in Job.FINISHED or job.expired_at or remaining <= 0:
                return job
            ended.wait(min(remaining, RECHECK_SECONDS))


@contextlib.contextmanager
def wait_slot(*, wanted: bool, environ: dict) -> Iterator[bool]:
    """Whether this request may hold its thread to wait; True at most STATUS_WAIT_SLOTS at a time.

    Never in a single-threaded server (WSGI's `wsgi.multithread` is false, as in gunicorn's
    sync worker): a wait there would stall every other request of the process. The cap keeps
    threads free for uploads when many clients wait.
    """
    if not wanted or not environ.get("wsgi.multithread", False):
        yield False
        return
    slots = _wait_slots()
    if not slots.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        slots.release()


@functools.cache
def _wait_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(settings.THUMBNAILER_STATUS_WAIT_SLOTS)


class Subscriber:
    """This process's listener on CHANNEL, and the requests it wakes, by job id."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: dict[str, list[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    @contextlib.contextmanager
    def watching(self, job_id: str) -> Iterator[threading.Event]:
        """An event set whenever word comes that job_id ended (or that word may have been missed)."""
        event = threading.Event()
        with self._lock:
            self._start_once()
            self._waiting.setdefault(job_id, []).append(event)
        try:
            yield event
        finally:
            with self._lock:
                events = self._waiting[job_id]
                events.remove(event)
                if not events:
                    del self._waiting[job_id]

    def wake(self, job_id: str) -> None:
        with self._lock:
            for event in self._waiting.get(job_id, ()):
                event.set()

    def wake_all(self) -> None:
        with self._lock:
            for events in self._waiting.values():
                for event in events:
                    event.set()

    def _start_once(self) -> None:
        # A forked child inherits the attributes but not the thread: it starts its own.
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._listen_forever, name="job-ended-subscriber", daemon=True)
        self._thread.start()

    def _listen_forever(self) -> None:
        # One warning when Redis goes away and one line when it is back, not one a second.
        lost = False
        while True:
            client = redis_client()
            if client is None:
                return  # no Redis to listen to: waiting requests read their rows each RECHECK_SECONDS
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(CHANNEL)
                while True:
                    message = pubsub.get_message(timeout=30.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        if lost:
                            logger.info("job-ended subscriber: subscribed again")
                            lost = False
                        # Word published before Redis confirmed the subscription is lost: read again.
                        self.wake_all()
                    elif message["type"] == "message":
                        data = message["data"]
                        self.wake(data.decode() if isinstance(data, bytes) else data)
            except Exception as error:  # Redis went away: waiting requests fall back to reading
                if not lost:
                    logger.warning("job-ended subscriber lost Redis, subscribing again: %r", error)
                    lost = True
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
            time.sleep(RESUBSCRIBE_SECONDS)


subscriber = Subscriber()
