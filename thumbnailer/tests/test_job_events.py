"""A status read that waits (?wait=) ends when the job ends: on word through Redis, or on its next read."""

import logging
import threading
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from thumbnailer import job_events, services
from thumbnailer.models import Job
from thumbnailer.views import wait_seconds

from .support.jobs import make_job

# The waits below are long: one that ends sooner was woken by the job's end, not timed out.
WAIT = 30.0


def later(action, *, after: float = 0.3) -> threading.Thread:
    """Run `action` in another thread (with its own database connection) after `after` seconds."""

    def run():
        time.sleep(after)
        try:
            action()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def finish(job_id, *, announce: bool) -> None:
    Job.objects.filter(id=job_id).update(status=Job.Status.SUCCESS, finished_at=timezone.now())
    if announce:
        job_events.job_ended_announce(job_id=job_id)


def wait_for_end(job_id):
    """job_wait with the long WAIT; and whether it ended before that ran out (woken, not timed out)."""
    started = time.monotonic()
    job = job_events.job_wait(job_id=job_id, timeout=WAIT)
    return job, time.monotonic() - started < WAIT


@pytest.fixture
def no_rechecks(monkeypatch):
    """A waiting read reads its job again only when word comes, so only the word can end it early."""
    monkeypatch.setattr(job_events, "RECHECK_SECONDS", WAIT * 2)


@pytest.mark.parametrize(
    "spelling",
    [str, lambda job_id: job_id.hex.upper()],
    ids=["as announced", "in capitals without hyphens"],
)
@pytest.mark.django_db(transaction=True)
def test_the_workers_word_wakes_a_waiting_read(redis_server, no_rechecks, spelling):
    job = make_job()
    worker = later(lambda: finish(job.id, announce=True))

    waited, early = wait_for_end(spelling(job.id))
    worker.join()

    assert (waited.status, early) == (Job.Status.SUCCESS, True)


@pytest.mark.django_db(transaction=True)
def test_a_waiting_read_sees_an_unannounced_end_on_its_next_read(redis_server):
    """Word lost (Redis down when the worker finished): the row is read again each RECHECK_SECONDS."""
    job = make_job()
    worker = later(lambda: finish(job.id, announce=False))

    waited, early = wait_for_end(job.id)
    worker.join()

    assert (waited.status, early) == (Job.Status.SUCCESS, True)


@pytest.mark.django_db(transaction=True)
def test_deleting_a_job_wakes_its_waiting_reads(redis_server, no_rechecks):
    job = make_job()
    uploader = later(lambda: services.job_delete(job_id=job.id))

    waited, early = wait_for_end(job.id)
    uploader.join()

    assert (waited.status, waited.deleted_at is not None, early) == (Job.Status.PENDING, True, True)


@pytest.mark.django_db(transaction=True)
def test_word_of_another_job_does_not_end_a_wait(redis_server):
    job, other = make_job(), make_job(sha256="cd" * 32)
    worker = later(lambda: finish(other.id, announce=True), after=0.1)

    waited = job_events.job_wait(job_id=job.id, timeout=0.8)
    worker.join()

    assert waited.status == Job.Status.PENDING


def test_after_redis_comes_back_word_wakes_waiting_reads_again(
    private_stack, monkeypatch, no_rechecks, caplog
):
    """The subscriber subscribes again once Redis answers again, and reads are woken as before.

    An outage is logged once, however many times it tried meanwhile, and so is the recovery.
    """
    caplog.set_level(logging.INFO, logger="thumbnailer.job_events")
    client = private_stack.redis.client()
    monkeypatch.setattr(job_events, "redis_client", lambda: client)
    monkeypatch.setattr(job_events, "subscriber", job_events.Subscriber())
    monkeypatch.setattr(job_events, "RESUBSCRIBE_SECONDS", 0.1)
    before, after = make_job(), make_job(sha256="cd" * 32)
    worker = later(lambda: finish(before.id, announce=True))
    assert wait_for_end(before.id)[0].status == Job.Status.SUCCESS
    worker.join()

    private_stack.redis.restart_empty()
    worker = later(lambda: finish(after.id, announce=True), after=1.0)
    waited, early = wait_for_end(after.id)
    worker.join()

    assert (waited.status, early) == (Job.Status.SUCCESS, True)
    # redis-py may reconnect by itself (then nothing is logged); if it gave up, one line each.
    logged = [(record.levelname, record.getMessage().split(":")[0]) for record in caplog.records]
    assert logged in (
        [],
        [("WARNING", "job-ended subscriber lost Redis, subscribing again"), ("INFO", "job-ended subscriber")],
    )


@pytest.mark.django_db
def test_a_wait_that_runs_out_answers_the_job_as_it_stands_and_none_for_no_job(redis_server):
    job = make_job()

    assert job_events.job_wait(job_id=job.id, timeout=0.2).status == Job.Status.PENDING
    assert wait_for_end(uuid.uuid4()) == (None, True)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("", 0.0), ("0", 0.0), ("2.5", 2.5), ("25", 25.0), ("600", 25.0)]
    + [(text, None) for text in ["-1", "nan", "inf", "soon", "1e999"]],
)
def test_wait_seconds_are_0_to_25_and_longer_waits_are_shortened(text, seconds):
    assert wait_seconds(text) == seconds


def test_waits_take_a_slot_of_a_multithreaded_server_while_slots_last(settings):
    settings.THUMBNAILER_STATUS_WAIT_SLOTS = 1
    job_events._wait_slots.cache_clear()
    threaded, single = {"wsgi.multithread": True}, {"wsgi.multithread": False}
    try:
        with (
            job_events.wait_slot(wanted=True, environ=threaded) as first,
            job_events.wait_slot(wanted=True, environ=threaded) as second,
        ):
            assert (first, second) == (True, False)
        with job_events.wait_slot(wanted=True, environ=threaded) as after_release:
            assert after_release is True
        with job_events.wait_slot(wanted=True, environ=single) as in_sync_worker:
            assert in_sync_worker is False
        with job_events.wait_slot(wanted=False, environ=threaded) as not_asked:
            assert not_asked is False
    finally:
        job_events._wait_slots.cache_clear()
