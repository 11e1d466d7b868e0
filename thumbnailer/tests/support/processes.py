"""Real processes for the tests: Redis, `celery worker`, `celery beat` and gunicorn.

Each starts on a free 127.0.0.1 port, waits until it is really ready, and logs to a file
in the session folder, so a failing test can show what the process said.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from thumbnailer_project import localredis

from ..environment import SESSION_DIR
from .http import request
from .polling import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BIN_DIR = Path(sys.executable).parent


class ManagedProcess:
    """A child process with its output in a log file, stopped on exit."""

    def __init__(self, name: str, command: list[str], *, env: dict):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = Path(SESSION_DIR) / f"{name}-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None
        self.url: str | None = None  # set for a server, once it answers

    def start(self) -> "ManagedProcess":
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(
                self.command,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group, so stop() also reaches pool children.
                start_new_session=True,
            )
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
    """A redis-server on the port of `url`, its files in a folder of the session."""

    def __init__(self, url: str, *, workdir: Path):
        self.url = url
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])
        self.workdir = workdir
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
    """Environment for a child process: the session's (Redis, media folder...), the test database file."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    database = connection.settings_dict
    if database["ENGINE"] == "django.db.backends.postgresql":
        # The test database pytest-django made on the session's server (see environment.py).
        env["DATABASE_URL"] = (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{database['NAME']}"
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def start_worker(name: str = "worker", *, concurrency: int = 2, **env_overrides) -> ManagedProcess:
    command = [str(BIN_DIR / "celery"), "-A", "thumbnailer_project", "worker", "-l", "info"]
    command += ["-P", "prefork", "-c", str(concurrency), "-n", f"{name}-{os.getpid()}@%h"]
    command += ["--without-gossip", "--without-mingle"]
    worker = ManagedProcess(name, command, env=process_env(**env_overrides)).start()
    worker.wait_for_log("ready.", timeout=60)
    return worker


def start_beat(name: str = "beat", **env_overrides) -> ManagedProcess:
    """`celery beat` with its schedule file in the session folder."""
    schedule = Path(SESSION_DIR) / f"{name}-{time.monotonic_ns()}-schedule"
    command = [str(BIN_DIR / "celery"), "-A", "thumbnailer_project", "beat", "-l", "info"]
    command += ["--schedule", str(schedule)]
    beat = ManagedProcess(name, command, env=process_env(**env_overrides)).start()
    beat.wait_for_log("beat: Starting...", timeout=30)
    return beat


def start_web(name: str = "web", *, workers: int = 2, threads: int = 16, **env_overrides) -> ManagedProcess:
    """gunicorn serving the project on a free port; `url` is set once it answers."""
    port = localredis.free_port()
    command = [str(BIN_DIR / "gunicorn"), "thumbnailer_project.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--threads", str(threads), "--access-logfile", "-"]
    server = ManagedProcess(name, command, env=process_env(**env_overrides)).start()

    def up() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"{name} exited while starting:\n{server.log()[-4000:]}")
        try:
            return request("GET", f"http://127.0.0.1:{port}/", timeout=2).status == 200
        except OSError:
            return False

    wait_until(up, timeout=30, message=f"{name} answering")
    server.url = f"http://127.0.0.1:{port}"
    return server


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (a worker's pool processes), from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in children.read_text().split()]
    except FileNotFoundError:
        return []


class PrivateStack:
    """A Redis of its own plus whatever processes a test starts on it; all stopped at the end.

    A test that kills workers or restarts Redis runs on one, so the session's worker never
    takes its jobs and is never harmed. Its processes use the media folder the test has
    when they start (MEDIA_ROOT), so the test reads their files through default_storage.
    """

    def __init__(self, name: str):
        self.name = name
        self.redis = RedisServer(
            f"redis://127.0.0.1:{localredis.free_port()}/0",
            workdir=Path(SESSION_DIR) / f"redis-{name}-{time.monotonic_ns()}",
        )
        self.processes: list[ManagedProcess] = []

    def env(self, **overrides) -> dict:
        return {"REDIS_URL": self.redis.url, "MEDIA_ROOT": settings.MEDIA_ROOT, **overrides}

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


class S3Server:
    """moto's S3-compatible server on a free 127.0.0.1 port: a real HTTP object store, in memory."""

    REGION = "us-east-1"
    # moto takes any key pair; the processes and boto3 here all send this one.
    CREDENTIALS = {
        "AWS_ACCESS_KEY_ID": "thumbnailer-tests",
        "AWS_SECRET_ACCESS_KEY": "thumbnailer-tests-secret",
    }

    def __init__(self):
        self.port = localredis.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = ManagedProcess("s3", command, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def start(self) -> "S3Server":
        self.process.start()

        def up() -> bool:
            if self.process.process.poll() is not None:
                raise RuntimeError(f"the S3 server exited while starting:\n{self.process.log()[-4000:]}")
            try:
                return request("GET", f"{self.url}/", timeout=2).status == 200
            except OSError:
                return False

        wait_until(up, timeout=30, message="the S3 server answering")
        return self

    def stop(self) -> None:
        self.process.stop()

    def client(self):
        return s3_client(self.url)

    def env(self, bucket: str) -> dict:
        """The environment that points the site's processes at `bucket` (see settings' storage section)."""
        return {
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": self.url,
            "AWS_S3_REGION_NAME": self.REGION,
            **self.CREDENTIALS,
        }

    def storage_options(self, bucket: str) -> dict:
        """STORAGES["default"] for this process, as settings builds it from env(bucket)."""
        from boto3.s3.transfer import TransferConfig

        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": self.url,
                "access_key": self.CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret_key": self.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "region_name": self.REGION,
                "signature_version": "s3v4",
                "addressing_style": "path",
                "querystring_auth": True,
                "querystring_expire": 3600,
                "file_overwrite": True,
                "max_memory_size": 2_621_440,
                "transfer_config": TransferConfig(use_threads=False),
            },
        }


def s3_client(url: str):
    """A boto3 client of the test S3 server at `url`, with the keys every test server takes."""
    import boto3  # only the S3 tests need it loaded

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=S3Server.REGION,
        aws_access_key_id=S3Server.CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3Server.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
