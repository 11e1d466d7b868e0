"""Fixtures that start real things: Redis, Celery worker and beat, the web server, Chromium.

Each starts on a free 127.0.0.1 port, waits until it is really ready, and is always
stopped (and its log printed on failure) when its scope ends.
"""
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from scripts.loadtest import Reply, encode_multipart
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
    server = start_web()
    yield server
    server.stop()


def start_web(name: str = "web", *, workers: int = 2, threads: int = 4, **env_overrides) -> ManagedProcess:
    """gunicorn serving the project on a free port; `url` is set once it answers."""
    port = localredis.free_port()
    server = ManagedProcess(
        name,
        [
            str(BIN_DIR / "gunicorn"), "thumbnailer_project.wsgi",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
            "--access-logfile", "-",
        ],
        env=process_env(**env_overrides),
    ).start()
    server.url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"{name} exited while starting:\n{server.log()[-4000:]}")
        return _answers(server.url)

    wait_until(up, timeout=30, message=f"{name} answering")
    return server


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# --- Private stacks for fault, security and load tests ---------------------------------------
# A test that kills workers or restarts Redis gets its own Redis (and its own web server,
# worker and beat on it), so the session's worker never takes its jobs and is never harmed.


def start_beat(name: str = "beat", **env_overrides) -> ManagedProcess:
    """`celery beat` with its schedule file in the session folder."""
    schedule = Path(SESSION_DIR) / f"{name}-{time.monotonic_ns()}-schedule"
    beat = ManagedProcess(
        name,
        [
            str(BIN_DIR / "celery"), "-A", "thumbnailer_project", "beat", "-l", "info",
            "--schedule", str(schedule),
        ],
        env=process_env(**env_overrides),
    ).start()
    beat.wait_for_log("beat: Starting...", timeout=30)
    return beat


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (a worker's pool processes), from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in children.read_text().split()]
    except FileNotFoundError:
        return []


class PrivateStack:
    """A Redis of its own plus whatever processes a test starts on it; all stopped at the end."""

    def __init__(self, name: str):
        self.name = name
        self.redis = RedisServer(f"redis://127.0.0.1:{localredis.free_port()}/0")
        self.redis.workdir = Path(SESSION_DIR) / f"redis-{name}-{time.monotonic_ns()}"
        self.processes: list[ManagedProcess] = []

    def env(self, **overrides) -> dict:
        return {"REDIS_URL": self.redis.url, **overrides}

    def web(self, **env_overrides) -> ManagedProcess:
        return self._keep(start_web(f"{self.name}-web", **self.env(**env_overrides)))

    def worker(self, name: str = "worker", *, concurrency: int = 2, **env_overrides) -> ManagedProcess:
        return self._keep(
            start_worker(f"{self.name}-{name}", concurrency=concurrency, **self.env(**env_overrides))
        )

    def beat(self, **env_overrides) -> ManagedProcess:
        return self._keep(start_beat(f"{self.name}-beat", **self.env(**env_overrides)))

    def queued(self, queue: str = "celery") -> int:
        """Messages waiting in the broker's queue (not yet taken by a worker)."""
        return self.redis.client().llen(queue)

    def _keep(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.redis.stop()


@pytest.fixture
def private_stack(request, transactional_db):
    """A private Redis for one test; the processes the test starts on it stop before the DB is flushed."""
    stack = PrivateStack(request.node.name.split("[")[0][:40])
    stack.redis.start()
    yield stack
    stack.stop()
    # pytest shows a test's captured output only when it fails: then these logs explain why.
    for process in stack.processes:
        print(f"--- {process.name} log ---\n{process.log()[-6000:]}")


def post_upload_form(base_url: str, files: list[tuple[str, bytes]]):
    """Post files through the upload page's form like a browser without JavaScript (CSRF included)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(base_url + "/", timeout=10) as page:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode()).group(1)
    body, content_type = encode_multipart(
        {"csrfmiddlewaretoken": token},
        [("image_file", name, data, "application/octet-stream") for name, data in files],
    )
    request = urllib.request.Request(
        base_url + "/", data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with opener.open(request, timeout=30) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    return Reply(status=status, headers=headers, body=None, text=raw.decode(), raw=raw)
