"""Fixtures that start real things: Redis, Celery worker and beat, the web server, Chromium.

Each starts on a free 127.0.0.1 port, waits until it is really ready, and is always
stopped (and its log printed on failure) when its scope ends.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from thumbnailer_project import localredis

from .environment import SESSION_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent


class ManagedProcess:
    """A child process with its output in a log file, stopped on exit."""

    def __init__(self, name: str, command: list[str], *, env: dict):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = Path(SESSION_DIR) / f"{name}-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "ManagedProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group, so stop() also reaches pool children.
            start_new_session=True,
        )
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} never logged {text!r}:\n{self.log()[-4000:]}")

    def stop(self, *, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass


class RedisServer:
    """The session's Redis, on the port the environment plugin chose."""

    def __init__(self, url: str):
        self.url = url
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])
        self.workdir = Path(SESSION_DIR) / "redis"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = localredis.start_redis(port=self.port, workdir=self.workdir)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart_empty(self) -> None:
        """Stop and start again with no data, as a server without persistence would."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


def process_env(**overrides) -> dict:
    """Environment for a child process: same settings, and the test database file."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def start_worker(name: str = "worker", *, concurrency: int = 2, **env_overrides) -> ManagedProcess:
    worker = ManagedProcess(
        name,
        [
            str(BIN_DIR / "celery"), "-A", "thumbnailer_project", "worker",
            "-l", "info", "-P", "prefork", "-c", str(concurrency),
            "-n", f"{name}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle",
        ],
        env=process_env(**env_overrides),
    ).start()
    worker.wait_for_log("ready.", timeout=60)
    return worker


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer(settings.REDIS_URL)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_worker_process(redis_server, django_db_setup, django_db_blocker):
    """A real `celery worker` on the session's Redis and test database."""
    worker = start_worker()
    yield worker
    worker.stop()


@pytest.fixture
def media_root():
    return Path(settings.MEDIA_ROOT)


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{message} not met within {timeout}s")


@pytest.fixture(scope="module")
def web_server(redis_server, django_db_setup, django_db_blocker):
    """gunicorn serving the project on a free port, against the test database."""
    port = localredis.free_port()
    server = ManagedProcess(
        "web",
        [
            str(BIN_DIR / "gunicorn"), "thumbnailer_project.wsgi",
            "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
            "--access-logfile", "-",
        ],
        env=process_env(),
    ).start()
    server.wait_for_log("Booting worker", timeout=30)
    server.url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(server.url), timeout=30, message="web server answering")
    yield server
    server.stop()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
