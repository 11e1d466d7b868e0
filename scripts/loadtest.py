"""`make loadtest`: what one upload costs the whole product, next to bare Celery doing the same work.

It starts, on free 127.0.0.1 ports and in a temporary folder (on /dev/shm when that is a tmpfs
with room, see RAM_SCRATCH; --workdir to choose), the product as `make run` does
(a private Redis, gunicorn 2 workers x 16 threads, one `celery worker -c 2`, beat, a fresh SQLite
database and media folder), loads it, stops it; then a bare-Celery baseline (bench/bare_celery.py:
the same pipeline in a `celery worker -c 2` on its own Redis, no Django, database, storage or
HTTP) with the same images, and stops that too. It prints uploads/s of both and their ratio, and
per job: CPU ms of each process group (from /proc), database statements and writes (counted in
the product's processes by bench/querycount.py) and Redis commands (INFO commandstats).

Each client uploads its images one after another through POST /api/jobs/ and waits for the
job's end in that same request (`Prefer: wait=10`), as bare Celery's client waits on its
result; `--wait-in-status` waits in a status request after it instead (GET /task/<id>/?wait=10)
and `--wait 0` polls every 0.1 s, as the page does. So each waits for its thumbnails before
the next upload;
every upload must end SUCCESS. Bounded: a fixed number of uploads, a per-job and a whole-run
deadline. Loopback only: it refuses any other host, so it can never be pointed at someone
else's server by mistake.

    .venv/bin/python scripts/loadtest.py [--clients 20] [--uploads 10] [--workdir DIR]
    .venv/bin/python scripts/loadtest.py --url http://127.0.0.1:8000   # load a running `make run` only
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import io
import ipaddress
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: scripts, bench and the project import from here

FINISHED = ("SUCCESS", "FAILURE")
POLL_INTERVAL_SECONDS = 0.1
# How long a client asks the server to wait for its job's end (`Prefer: wait=` on the upload,
# or ?wait= on a status request), as bare Celery's client waits on its result; 0 polls every
# POLL_INTERVAL_SECONDS instead, as the page does.
WAIT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 30
IMAGE_SIZE = (1600, 1200)
# The run's database and media go to a RAM filesystem when the machine has one with room: the
# baseline touches no disk, and what a disk charges for creating files depends on its past.
# On ext4 without a journal (this project's VMs), creating a file skips, one lookup each, the
# inodes deleted in the last minutes (find_inode_bit -> recently_deleted): in a /tmp that test
# suites and earlier load tests churn, a job folder with three files cost 1.4 ms of CPU,
# against 0.1 in a quiet folder of the same disk and 0.06 on tmpfs. --workdir picks a disk.
RAM_SCRATCH = Path("/dev/shm")
RAM_SCRATCH_MIN_FREE_BYTES = 2 * 1024**3


@dataclass
class Reply:
    status: int
    headers: dict
    body: dict | None
    text: str
    raw: bytes


@dataclass
class UploadRecord:
    """What happened to one upload, from the client's side."""

    client: int
    number: int
    sha256: str
    upload_status: int = 0
    task_id: str = ""
    final_status: str = ""
    latency_seconds: float | None = None
    error: str = ""
    server_errors: int = 0


@dataclass
class LoadReport:
    clients: int
    uploads_per_client: int
    wall_seconds: float
    records: list[UploadRecord] = field(default_factory=list)

    @property
    def succeeded(self) -> list[UploadRecord]:
        return [record for record in self.records if record.final_status == "SUCCESS"]

    @property
    def errors(self) -> int:
        return sum(1 for record in self.records if record.error)

    @property
    def server_errors(self) -> int:
        """5xx answers seen anywhere (uploads and status polls)."""
        return sum(record.server_errors for record in self.records)

    @property
    def uploads_per_second(self) -> float:
        return len(self.succeeded) / self.wall_seconds if self.wall_seconds else 0.0

    def latency_percentile(self, percent: int) -> float | None:
        latencies = sorted(record.latency_seconds for record in self.succeeded)
        if not latencies:
            return None
        if len(latencies) == 1:
            return latencies[0]
        return statistics.quantiles(latencies, n=100, method="inclusive")[percent - 1]

    def summary_lines(self) -> list[str]:
        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f} s"

        return [
            f"uploads: {len(self.records)} ({self.clients} clients x {self.uploads_per_client}), "
            f"succeeded: {len(self.succeeded)}, wall time: {self.wall_seconds:.1f} s",
            f"uploads/s: {self.uploads_per_second:.2f}",
            f"latency upload->SUCCESS: p50 {seconds(self.latency_percentile(50))}, "
            f"p95 {seconds(self.latency_percentile(95))}",
            f"errors: {self.errors} (5xx answers: {self.server_errors})",
        ]


# --- HTTP, standard library only ------------------------------------------------------------


def encode_multipart(fields: dict[str, str], files: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """Body and content type of a multipart/form-data request; files are (field, name, data, type)."""
    boundary = f"----thumbnailer-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for field_name, file_name, data, content_type in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{file_name}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        parts.append(head.encode("utf-8", "surrogateescape") + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# One kept-alive connection per client thread and server, as a browser keeps one: a new TCP
# connection for every status poll cost the client and gunicorn more than the poll itself.
_connections = threading.local()


def connection_for(url: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    pool = _connections.__dict__.setdefault("by_server", {})
    key = (url.hostname, url.port)
    if key not in pool:
        pool[key] = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    pool[key].timeout = timeout
    return pool[key]


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Reply:
    """One HTTP request; any status (4xx and 5xx included) comes back as a Reply."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    for attempt in (1, 2):
        connection = connection_for(parts, timeout)
        reused = connection.sock is not None
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            status, reply_headers, raw = response.status, dict(response.headers), response.read()
            break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            # The server closed a kept-alive connection before reading this request: send it again.
            if not reused or attempt == 2:
                raise
        except BaseException:
            connection.close()
            raise
    if reply_headers.get("Connection", "").lower() == "close":
        connection.close()
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if "json" in reply_headers.get("Content-Type", "") else None
    except ValueError:
        parsed = None
    return Reply(status=status, headers=reply_headers, body=parsed, text=text, raw=raw)


def post_image(
    base_url: str,
    name: str,
    data: bytes,
    *,
    sizes: str | None = None,
    content_type: str = "image/jpeg",
    wait: float = 0,
) -> Reply:
    """POST one file to the JSON API, the way a script with curl would; `wait`: `Prefer: wait=`."""
    fields = {"sizes": sizes} if sizes else {}
    body, multipart_type = encode_multipart(fields, [("image_file", name, data, content_type)])
    headers = {"Content-Type": multipart_type}
    if wait:
        headers["Prefer"] = f"wait={wait:g}"
    return request("POST", f"{base_url}/api/jobs/", body=body, headers=headers)


def get_status(base_url: str, task_id: str, *, wait: float = 0) -> Reply:
    query = f"?wait={wait:g}" if wait else ""
    return request("GET", f"{base_url}/task/{task_id}/{query}")


# --- The load -------------------------------------------------------------------------------


def make_image(client: int, number: int, size: tuple[int, int]) -> bytes:
    """A distinct JPEG per upload, so a mix-up between jobs would show in their bytes."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize(size).convert("RGB")
    ImageDraw.Draw(image).rectangle(
        (client * 7 % (size[0] // 2), number * 11 % (size[1] // 2), size[0] // 2, size[1] // 2),
        fill=(client * 12 % 256, number * 25 % 256, 90),
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_images(
    clients: int, uploads: int, size: tuple[int, int], *, first_client: int = 0
) -> list[list[bytes]]:
    return [
        [make_image(client, number, size) for number in range(uploads)]
        for client in range(first_client, first_client + clients)
    ]


def run_client(
    base_url: str,
    client: int,
    images: list[bytes],
    *,
    job_timeout: float,
    deadline: float,
    stop: threading.Event,
    wait_seconds: float = WAIT_SECONDS,
    wait_in_upload: bool = True,
) -> list[UploadRecord]:
    records = []
    for number, data in enumerate(images):
        record = UploadRecord(client=client, number=number, sha256=hashlib.sha256(data).hexdigest())
        records.append(record)
        if stop.is_set() or time.monotonic() > deadline:
            record.error = "not sent: the run's deadline passed"
            continue
        started = time.monotonic()
        try:
            reply = post_image(base_url, "photo.jpg", data, wait=wait_seconds if wait_in_upload else 0)
        except OSError as error:
            record.error = f"upload failed: {error}"
            continue
        record.upload_status = reply.status
        record.server_errors += reply.status >= 500
        # 201: the job ended within the upload's wait; 202: it is still under way.
        if reply.status not in (201, 202) or not reply.body:
            record.error = f"upload answered {reply.status}: {reply.text[:200]}"
            continue
        record.task_id = reply.body["task_id"]
        answer = reply  # after a wait, or for a repeat, the answer may already be the end
        state = answer.body.get("task_status", "")
        finish_by = min(started + job_timeout, deadline)
        # The upload's answer already said where the job stands. Unfinished, the client asks
        # a status request to wait for the end (?wait=). When it polls instead, or an answer
        # comes back unfinished sooner than the wait it asked for (the server had no wait slot
        # free), it pauses first, as the page does between polls: a read at once would say the same.
        pause = wait_seconds == 0
        while state not in FINISHED:
            if time.monotonic() >= finish_by or stop.is_set():
                record.error = "job did not finish in time"
                break
            if pause:
                time.sleep(POLL_INTERVAL_SECONDS)
            asked = time.monotonic()
            wait = min(wait_seconds, max(0.0, finish_by - asked))
            try:
                answer = get_status(base_url, record.task_id, wait=wait)
            except OSError as error:
                record.error = f"status poll failed: {error}"
                break
            pause = wait == 0 or time.monotonic() - asked < wait
            record.server_errors += answer.status >= 500
            state = (answer.body or {}).get("task_status", "")
        else:
            record.final_status = state
            record.latency_seconds = time.monotonic() - started
            if state == "FAILURE":
                record.error = f"job failed: {answer.body.get('error')}"
    return records


def run_load(
    base_url: str,
    *,
    clients: int = 20,
    uploads: int = 10,
    image_size=IMAGE_SIZE,
    job_timeout: float = 60.0,
    run_timeout: float = 240.0,
    images: list[list[bytes]] | None = None,
    wait_seconds: float = WAIT_SECONDS,
    wait_in_upload: bool = True,
) -> LoadReport:
    """Run `clients` concurrent clients of `uploads` uploads each; bounded by `run_timeout`.

    `images` (one list per client) replaces the generated ones, so another run can use the same.
    """
    images = images or make_images(clients, uploads, image_size)
    stop = threading.Event()
    started = time.monotonic()
    deadline = started + run_timeout
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(
                run_client,
                base_url,
                client,
                images[client],
                job_timeout=job_timeout,
                deadline=deadline,
                stop=stop,
                wait_seconds=wait_seconds,
                wait_in_upload=wait_in_upload,
            )
            for client in range(clients)
        ]
        try:
            records = [record for future in futures for record in future.result()]
        except BaseException:
            stop.set()
            raise
    return LoadReport(
        clients=clients, uploads_per_client=uploads, wall_seconds=time.monotonic() - started, records=records
    )


def require_loopback(base_url: str) -> None:
    """Refuse anything but this machine: a load test must never hit a server by accident."""
    host = urllib.parse.urlsplit(base_url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise SystemExit(f"loadtest: cannot resolve {host!r}: {error}") from None
    if not addresses or not all(
        ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses
    ):
        raise SystemExit(f"loadtest: {host!r} is not this machine; only loopback addresses are allowed.")


# --- Cost accounting: CPU from /proc, Redis commands, database statements ---------------------

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[int, int, int]]:
    """{pid: (parent pid, CPU ticks of its own, CPU ticks of its reaped children)} of every process."""
    table = {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: fields are counted after the last ")".
            fields = stat_path.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        table[int(stat_path.parent.name)] = (int(fields[1]), utime + stime, cutime + cstime)
    return table


@dataclass
class ProcessGroup:
    """Processes counted together: `pid` itself, and its children when `children` is set."""

    name: str
    pid: int
    itself: bool = True
    children: bool = False

    def members(self, table: dict) -> set[int]:
        pids = {self.pid} if self.itself else set()
        if self.children:
            pids |= {pid for pid, (parent, _, _) in table.items() if parent == self.pid}
        return pids


def cpu_ticks_by_group(groups: list[ProcessGroup], table: dict) -> dict[str, dict[int, int]]:
    """Per group, the CPU ticks of each member; children that ended count under their parent's pid."""
    ticks = {}
    for group in groups:
        members = {pid: table[pid][1] for pid in group.members(table) if pid in table}
        if group.children and group.pid in table:
            members[-group.pid] = table[group.pid][2]  # ended (reaped) children, e.g. a replaced pool process
        ticks[group.name] = members
    return ticks


def cpu_ms_spent(before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]) -> dict[str, float]:
    return {
        name: sum(ticks - before[name].get(pid, 0) for pid, ticks in members.items())
        * 1000
        / CLOCK_TICKS_PER_SECOND
        for name, members in after.items()
    }


def redis_command_calls(url: str) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats), without our own INFO."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    return {
        name.removeprefix("cmdstat_"): values["calls"]
        for name, values in stats.items()
        if name != "cmdstat_info"
    }


def counted_since(before: dict, after: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}


@dataclass
class Costs:
    """What one measured run cost: CPU per process group, Redis commands, database statements."""

    jobs: int
    cpu_ms: dict[str, float]
    redis_commands: dict[str, int]
    statements: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)

    def per_job(self, value: float) -> float:
        return value / self.jobs if self.jobs else 0.0


class Meter:
    """Snapshots before and after a run, for the process groups of one stack."""

    def __init__(self, groups: list[ProcessGroup], *, redis_url: str, count_dir: Path | None = None):
        self.groups = groups
        self.redis_url = redis_url
        self.count_dir = count_dir

    def snapshot(self) -> tuple:
        table = process_table()
        statements = {}
        if self.count_dir is not None:
            from bench.querycount import read_counts

            statements = read_counts(self.count_dir)
        return cpu_ticks_by_group(self.groups, table), redis_command_calls(self.redis_url), statements, table

    def costs(self, before: tuple, after: tuple, *, jobs: int) -> Costs:
        cpu_before, redis_before, statements_before, _ = before
        cpu_after, redis_after, statements_after, table = after
        costs = Costs(
            jobs=jobs,
            cpu_ms=cpu_ms_spent(cpu_before, cpu_after),
            redis_commands=counted_since(redis_before, redis_after),
        )
        for pid, (statements, writes) in statements_after.items():
            old_statements, old_writes = statements_before.get(pid, (0, 0))
            group = next((g.name for g in self.groups if pid in g.members(table)), "other")
            costs.statements[group] = costs.statements.get(group, 0) + statements - old_statements
            costs.writes[group] = costs.writes.get(group, 0) + writes - old_writes
        return costs


# --- Private stacks: the product as `make run` starts it, and the bare-Celery baseline ---------

BIN_DIR = Path(sys.executable).parent


class Stack:
    """Processes started for one measurement, each in its own session, logging to the work folder."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so stop() reaches pool and gunicorn workers too
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, name: str, text: str, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            if self.processes[name].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{name} never logged {text!r}:\n{self.log(name)[-3000:]}")

    def wait_for_http(self, name: str, url: str, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                break
            try:
                if request("GET", url, timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} never answered {url}:\n{self.log(name)[-3000:]}")

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            if process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass


def start_redis(stack: Stack, name: str) -> str:
    from thumbnailer_project import localredis

    port = localredis.free_port()
    command = [localredis.find_redis_server(), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--dir", str(stack.workdir), "--save", "", "--appendonly", "no"]
    process = stack.start(name, command)
    url = f"redis://127.0.0.1:{port}/0"
    localredis.wait_for_redis(url, process=process)
    return url


def counted(count_dir: Path, program: str, *arguments: str) -> list[str]:
    """The command that runs gunicorn or celery with its database statements counted."""
    return [
        str(BIN_DIR / "python"),
        str(ROOT / "bench" / "querycount.py"),
        str(count_dir),
        program,
        *arguments,
    ]


@dataclass
class Measured:
    """One stack's run: the clients' report and what it cost."""

    name: str
    jobs_per_second: float
    errors: int
    costs: Costs
    summary: list[str]


@contextlib.contextmanager
def product_stack(workdir: Path, warmup: list[list[bytes]]) -> Iterator[Callable[..., Measured]]:
    """Start the product as `make run` does (gunicorn 2x16, one worker -c 2, beat) and warm it up.

    Yields a function that loads it with a batch of images and returns what that cost; the
    stack is stopped when the block ends.
    """
    from scripts.devstack import WEB_OPTIONS, run_environment
    from thumbnailer_project import localredis

    workdir.mkdir()
    count_dir = workdir / "statements"
    count_dir.mkdir()
    (workdir / "static").mkdir()  # the API serves no static file; an empty folder keeps WhiteNoise quiet
    env = run_environment(os.environ, run_dir=workdir)
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        MEDIA_ROOT=str(workdir / "media"),
        DJANGO_STATIC_ROOT=str(workdir / "static"),
    )
    env.pop("THUMBNAILER_TEST_DATABASE", None)
    stack = Stack(workdir, env)
    try:
        env["REDIS_URL"] = start_redis(stack, "redis")
        subprocess.run(
            [str(BIN_DIR / "python"), str(ROOT / "manage.py"), "migrate", "--noinput", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        port = localredis.free_port()
        web = stack.start(
            "web",
            counted(
                count_dir,
                "gunicorn",
                "thumbnailer_project.wsgi",
                *("--bind", f"127.0.0.1:{port}", *WEB_OPTIONS.split()),
            ),
        )
        worker = stack.start(
            "worker",
            counted(count_dir, "celery", "-A", "thumbnailer_project", "worker", "-l", "info", "-c", "2"),
        )
        beat = stack.start(
            "beat",
            counted(
                count_dir,
                *("celery", "-A", "thumbnailer_project", "beat", "-l", "info"),
                *("--schedule", str(workdir / "celerybeat-schedule")),
            ),
        )
        base_url = f"http://127.0.0.1:{port}"
        require_loopback(base_url)
        stack.wait_for_http("web", f"{base_url}/healthz/")
        stack.wait_for_log("worker", "ready.")
        stack.wait_for_log("beat", "beat: Starting...")
        meter = Meter(
            [
                ProcessGroup("gunicorn", web.pid, children=True),
                ProcessGroup("worker main", worker.pid),
                ProcessGroup("worker pool", worker.pid, itself=False, children=True),
                ProcessGroup("beat", beat.pid),
                ProcessGroup("redis", stack.processes["redis"].pid),
                ProcessGroup("load client", os.getpid()),
            ],
            redis_url=env["REDIS_URL"],
            count_dir=count_dir,
        )
        run_load(base_url, clients=len(warmup), uploads=len(warmup[0]), images=warmup, job_timeout=60)

        def measure(
            images: list[list[bytes]],
            *,
            job_timeout=60.0,
            run_timeout=240.0,
            wait_seconds=WAIT_SECONDS,
            wait_in_upload=True,
        ) -> Measured:
            before = meter.snapshot()
            report = run_load(
                base_url,
                clients=len(images),
                uploads=len(images[0]),
                images=images,
                job_timeout=job_timeout,
                run_timeout=run_timeout,
                wait_seconds=wait_seconds,
                wait_in_upload=wait_in_upload,
            )
            after = meter.snapshot()
            for record in [record for record in report.records if record.error][:10]:
                print(f"  client {record.client} upload {record.number}: {record.error}", file=sys.stderr)
            return Measured(
                name="full stack",
                jobs_per_second=report.uploads_per_second,
                errors=report.errors + report.server_errors,
                costs=meter.costs(before, after, jobs=len(report.succeeded)),
                summary=report.summary_lines(),
            )

        yield measure
    finally:
        stack.stop()


@contextlib.contextmanager
def bare_celery_stack(workdir: Path, warmup: list[list[bytes]]) -> Iterator[Callable[..., Measured]]:
    """Start a private Redis and the bare-Celery worker (-c 2) and warm it up; yields as product_stack."""
    from bench import bare_celery

    workdir.mkdir()
    stack = Stack(workdir, dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        redis_url = start_redis(stack, "redis")
        stack.env["BARE_CELERY_REDIS_URL"] = redis_url
        bare_celery.app.conf.update(broker_url=redis_url, result_backend=redis_url)
        worker = stack.start(
            "worker",
            [str(BIN_DIR / "celery"), "-A", "bench.bare_celery", "worker", "-l", "info", "-c", "2"],
        )
        stack.wait_for_log("worker", "ready.")
        meter = Meter(
            [
                ProcessGroup("worker main", worker.pid),
                ProcessGroup("worker pool", worker.pid, itself=False, children=True),
                ProcessGroup("redis", stack.processes["redis"].pid),
                ProcessGroup("load client", os.getpid()),
            ],
            redis_url=redis_url,
        )
        bare_celery.run_bare_load(write_images(workdir / "warmup", warmup))
        batches = itertools.count(1)

        def measure(images: list[list[bytes]], *, job_timeout=60.0, run_timeout=240.0) -> Measured:
            # Written before the clock starts: the product's client holds its images in memory too.
            paths = write_images(workdir / f"images-{next(batches)}", images)
            before = meter.snapshot()
            report = bare_celery.run_bare_load(paths, job_timeout=job_timeout, run_timeout=run_timeout)
            after = meter.snapshot()
            for record in [record for record in report.records if record.error][:10]:
                print(f"  bare client {record.client} job {record.number}: {record.error}", file=sys.stderr)
            return Measured(
                name="bare Celery",
                jobs_per_second=report.jobs_per_second,
                errors=report.errors,
                costs=meter.costs(before, after, jobs=len(report.succeeded)),
                summary=[
                    f"jobs: {len(report.records)}, succeeded: {len(report.succeeded)}, "
                    f"wall time: {report.wall_seconds:.1f} s, jobs/s: {report.jobs_per_second:.2f}"
                ],
            )

        yield measure
    finally:
        bare_celery.app.close()
        stack.stop()


def measure_product(workdir: Path, images, warmup, **timeouts) -> Measured:
    """One measured run of the product's stack, started and stopped for it."""
    with product_stack(workdir, warmup) as measure:
        return measure(images, **timeouts)


def measure_bare_celery(workdir: Path, images, warmup, **timeouts) -> Measured:
    """One measured run of the bare-Celery baseline, started and stopped for it."""
    with bare_celery_stack(workdir, warmup) as measure:
        return measure(images, **timeouts)


def write_images(folder: Path, images: list[list[bytes]]) -> list[list[Path]]:
    folder.mkdir()
    paths = []
    for client, datas in enumerate(images):
        paths.append([])
        for number, data in enumerate(datas):
            path = folder / f"client{client}-{number}.jpg"
            path.write_bytes(data)
            paths[-1].append(path)
    return paths


GROUPS = ["gunicorn", "worker main", "worker pool", "beat", "redis", "load client"]


def combined(rounds: list[Measured]) -> Measured:
    """Several runs of one stack as one: the median rate, and costs per job over all their jobs."""

    def summed(name: str) -> dict:
        total: dict = {}
        for measured in rounds:
            for key, value in getattr(measured.costs, name).items():
                total[key] = total.get(key, 0) + value
        return total

    return Measured(
        name=rounds[0].name,
        jobs_per_second=statistics.median(measured.jobs_per_second for measured in rounds),
        errors=sum(measured.errors for measured in rounds),
        costs=Costs(
            jobs=sum(measured.costs.jobs for measured in rounds),
            cpu_ms=summed("cpu_ms"),
            redis_commands=summed("redis_commands"),
            statements=summed("statements"),
            writes=summed("writes"),
        ),
        summary=[line for measured in rounds for line in measured.summary],
    )


def throughput_ratio(full: Measured, bare: Measured) -> float:
    return full.jobs_per_second / bare.jobs_per_second if bare.jobs_per_second else 0.0


def cost_table(full: Measured, bare: Measured, *, ratio: float | None = None) -> list[str]:
    """The comparison as a Markdown table (bench/README.md keeps one); `ratio` defaults to this pair's."""
    ratio = throughput_ratio(full, bare) if ratio is None else ratio

    def cell(measured: Measured, value: float | None, digits: int = 1) -> str:
        return "–" if value is None else f"{measured.costs.per_job(value):.{digits}f}"

    rows = [
        "| per job | full stack | bare Celery |",
        "|---|---:|---:|",
        f"| uploads/s (ratio {ratio:.2f}) | {full.jobs_per_second:.1f} | {bare.jobs_per_second:.1f} |",
    ]
    for group in GROUPS:
        rows.append(
            f"| CPU ms, {group} | {cell(full, full.costs.cpu_ms.get(group))} "
            f"| {cell(bare, bare.costs.cpu_ms.get(group))} |"
        )
    rows.append(
        f"| CPU ms, total | {cell(full, sum(full.costs.cpu_ms.values()))} "
        f"| {cell(bare, sum(bare.costs.cpu_ms.values()))} |"
    )
    for group in ["gunicorn", "worker pool", "beat", "other"]:
        if group in full.costs.statements:
            rows.append(
                f"| DB statements (writes), {group} | {cell(full, full.costs.statements[group], 2)} "
                f"({cell(full, full.costs.writes[group], 2)}) | – |"
            )
    rows.append(
        f"| Redis commands | {cell(full, sum(full.costs.redis_commands.values()))} "
        f"| {cell(bare, sum(bare.costs.redis_commands.values()))} |"
    )
    return rows


def top_commands(measured: Measured, count: int = 8) -> str:
    ranked = sorted(measured.costs.redis_commands.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {measured.costs.per_job(calls):.1f}" for name, calls in ranked)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="load a stack that is already running instead (no baseline, no costs)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=10, help="uploads per client")
    parser.add_argument("--job-timeout", type=float, default=60.0, help="seconds one job may take")
    parser.add_argument("--run-timeout", type=float, default=240.0, help="seconds the whole run may take")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measured runs of each stack, taken in turn (default 3)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=WAIT_SECONDS,
        help=f"seconds a client asks the server to wait for its job's end (default {WAIT_SECONDS:g}); "
        f"0 polls every {POLL_INTERVAL_SECONDS:g} s",
    )
    parser.add_argument(
        "--wait-in-status",
        action="store_true",
        help="wait in a status request after the upload (GET ?wait=) instead of in the upload (Prefer: wait)",
    )
    parser.add_argument(
        "--workdir",
        help=f"folder for the run's database and media (default {RAM_SCRATCH} if it is a tmpfs with room, "
        "else the system's temporary folder)",
    )
    parser.add_argument("--json", action="store_true", help="print every upload's record as JSON too")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 200 and 1 <= args.uploads <= 1000 and 1 <= args.rounds <= 10):
        parser.error("--clients must be 1-200, --uploads 1-1000 and --rounds 1-10")
    if args.url:
        return load_running_stack(args)

    # New images every round: the product answers a repeat of the same bytes without a worker.
    batches = [
        make_images(args.clients, args.uploads, IMAGE_SIZE, first_client=round_ * args.clients)
        for round_ in range(args.rounds)
    ]
    warmup = make_images(2, 2, IMAGE_SIZE, first_client=args.rounds * args.clients)
    print(
        f"loadtest: {args.clients} clients x {args.uploads} uploads of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} JPEGs, "
        f"{args.rounds} rounds; each round loads the full stack, then the bare-Celery baseline"
    )
    scratch_parent = args.workdir or ram_scratch()
    timeouts = {"job_timeout": args.job_timeout, "run_timeout": args.run_timeout}
    fulls, bares = [], []
    # Both stacks run throughout and are loaded in turn, so a slow spell of a shared machine
    # falls on both sides of a round rather than on one whole side of the comparison.
    with (
        tempfile.TemporaryDirectory(prefix="thumbnailer-loadtest-", dir=scratch_parent) as workdir,
        product_stack(Path(workdir) / "full", warmup) as measure_full,
        bare_celery_stack(Path(workdir) / "bare", warmup) as measure_bare,
    ):
        print(f"database and media in {workdir} ({filesystem_type(workdir)})", flush=True)
        for number, images in enumerate(batches, 1):
            fulls.append(
                measure_full(
                    images, wait_seconds=args.wait, wait_in_upload=not args.wait_in_status, **timeouts
                )
            )
            bares.append(measure_bare(images, **timeouts))
            print(
                f"round {number}: full stack {fulls[-1].jobs_per_second:.1f} uploads/s, "
                f"bare Celery {bares[-1].jobs_per_second:.1f} jobs/s, "
                f"ratio {throughput_ratio(fulls[-1], bares[-1]):.2f}",
                flush=True,
            )
    full, bare = combined(fulls), combined(bares)
    ratio = statistics.median(throughput_ratio(f, b) for f, b in zip(fulls, bares, strict=True))
    print("full stack (gunicorn 2x16, worker -c 2, beat, Redis, SQLite):")
    print("\n".join(f"  {line}" for line in full.summary))
    print("bare Celery (worker -c 2, Redis; same pipeline, no Django, database, storage or HTTP):")
    print("\n".join(f"  {line}" for line in bare.summary))
    print()
    print(
        f"Median of {args.rounds} rounds: uploads/s and their ratio; CPU, statements and commands per job over all."
    )
    print("\n".join(cost_table(full, bare, ratio=ratio)))
    print()
    print(f"Redis commands per job, full stack: {top_commands(full)}")
    print(f"Redis commands per job, bare Celery: {top_commands(bare)}")
    return 0 if full.errors == 0 and bare.errors == 0 else 1


def ram_scratch() -> str | None:
    """RAM_SCRATCH if it is a tmpfs this process may write with room to spare, else None (the default)."""
    if filesystem_type(str(RAM_SCRATCH)) != "tmpfs" or not os.access(RAM_SCRATCH, os.W_OK):
        return None
    stats = os.statvfs(RAM_SCRATCH)
    return str(RAM_SCRATCH) if stats.f_bavail * stats.f_frsize >= RAM_SCRATCH_MIN_FREE_BYTES else None


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding path, from /proc/mounts (the deepest mount point above it)."""
    target = os.path.realpath(path)
    best, kind = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) < 3:
                continue
            mount_point = fields[1].replace("\\040", " ")
            inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, kind = mount_point, fields[2]
    return kind


def load_running_stack(args) -> int:
    """The load alone, against a stack someone started (`make run`)."""
    base_url = args.url.rstrip("/")
    require_loopback(base_url)
    try:
        request("GET", f"{base_url}/", timeout=5)
    except OSError as error:
        print(
            f"loadtest: nothing answers at {base_url} ({error}); start it with `make run`.", file=sys.stderr
        )
        return 2

    print(f"loadtest: {args.clients} clients x {args.uploads} uploads against {base_url}", flush=True)
    report = run_load(
        base_url,
        clients=args.clients,
        uploads=args.uploads,
        job_timeout=args.job_timeout,
        run_timeout=args.run_timeout,
        wait_seconds=args.wait,
        wait_in_upload=not args.wait_in_status,
    )
    print("\n".join(report.summary_lines()))
    if args.json:
        print(json.dumps([asdict(record) for record in report.records]))
    for record in [record for record in report.records if record.error][:10]:
        print(f"  client {record.client} upload {record.number}: {record.error}", file=sys.stderr)
    return 0 if report.errors == 0 and report.server_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
