"""Fixtures that start real things (Redis, Celery worker, the web server, private stacks) or isolate a test.

Each process starts on a free 127.0.0.1 port and is always stopped when its scope ends; the
helpers behind them live in `support/`.
"""

import functools
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage

from thumbnailer_project.celery import app as celery_app

from .environment import SESSION_DIR
from .support.processes import PrivateStack, RedisServer, S3Server, start_web, start_worker

# A queue no worker reads: see the parked_jobs fixture.
PARKED_QUEUE = "thumbnailer-tests-parked"


@pytest.fixture(scope="session")
def redis_server():
    """The session's Redis, on the port the environment plugin chose."""
    server = RedisServer(django_settings.REDIS_URL, workdir=Path(SESSION_DIR) / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_worker_process(redis_server, django_db_setup, django_db_blocker):
    """A real `celery worker` on the session's Redis, test database and media folder."""
    worker = start_worker()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def web_server(redis_server, django_db_setup, django_db_blocker):
    """gunicorn serving the project on a free port, against the test database and the session's media."""
    server = start_web()
    yield server
    server.stop()


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """This test's own empty media folder: default_storage and the test's private stack use it.

    The session's worker and web server keep the session's folder, so a test that sends
    jobs from this process with its own folder takes `parked_jobs` too.
    """
    folder = tmp_path / "media"
    folder.mkdir()
    settings.MEDIA_ROOT = str(folder)
    # FileSystemStorage forgets its location on setting_changed; a backend that did not would
    # quietly write into the session's folder.
    assert Path(default_storage.path("")) == folder
    return folder


@pytest.fixture
def parked_jobs(redis_server, monkeypatch):
    """Jobs sent from this process wait in the session's Redis on a queue that no worker reads.

    For tests with their own media_root: the session's worker would look for the originals in
    the session's folder, not find them and retry for a minute.
    """
    monkeypatch.setattr(celery_app, "send_task", functools.partial(celery_app.send_task, queue=PARKED_QUEUE))
    yield PARKED_QUEUE
    redis_server.client().delete(PARKED_QUEUE)


@pytest.fixture
def private_stack(request, transactional_db, media_root):
    """A private Redis for one test, and its own media folder; processes stop before the DB is flushed."""
    stack = PrivateStack(request.node.name.split("[")[0][:40])
    stack.redis.start()
    yield stack
    stack.stop()
    # pytest shows a test's captured output only when it fails: then these logs explain why.
    for process in stack.processes:
        print(f"--- {process.name} log ---\n{process.log()[-6000:]}")


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's) on a free 127.0.0.1 port, for the session."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A new, empty bucket of this test's own on the session's S3 server."""
    name = f"thumbnailer-{uuid.uuid4().hex[:16]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(settings, s3_server, s3_bucket, media_root) -> str:
    """default_storage is this test's bucket; media_root stays empty unless something writes to disk."""
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_options(s3_bucket)}
    assert default_storage.__class__.__name__ == "S3Storage"
    return s3_bucket
