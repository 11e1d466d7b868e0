"""pytest plugin loaded before Django (`-p` in pytest.ini): private resources for the session.

Django and Celery read REDIS_URL, MEDIA_ROOT and the test database name when settings
load, so they must be decided before that: a free port for the session's Redis, a
temporary media folder, and a test database file the worker processes can open too.
"""

import os
import shutil
import tempfile

from thumbnailer_project.localredis import free_port

SESSION_DIR = tempfile.mkdtemp(prefix="thumbnailer-tests-")

os.environ["MEDIA_ROOT"] = os.path.join(SESSION_DIR, "media")
os.environ["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
os.environ["THUMBNAILER_TEST_DATABASE"] = os.path.join(SESSION_DIR, "test.sqlite3")
os.environ.pop("DATABASE_URL", None)
os.environ["DJANGO_DEBUG"] = "1"

# THUMBNAILER_TEST_POSTGRES=1: the session runs against a real PostgreSQL server of its own
# (the claim, lease, requeue and purge queries take row locks there, not SQLite's file lock).
POSTGRES = None
if os.environ.get("THUMBNAILER_TEST_POSTGRES") == "1":
    from .postgres import PostgresServer

    POSTGRES = PostgresServer(free_port())
    os.environ["DATABASE_URL"] = POSTGRES.start()


def pytest_unconfigure(config):
    if POSTGRES is not None:
        POSTGRES.stop()
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
