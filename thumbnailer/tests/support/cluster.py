"""A simulated cluster: every host in a Linux network namespace of its own, joined by a bridge.

Hosts share nothing but the network, as SPEC §9b says they may: `db` (PostgreSQL), `s3` (moto's
S3 server), `redis`, `web` (gunicorn and the one celery beat) and `worker1`, `worker2` (a celery
worker each). Every host has its own empty MEDIA_ROOT and TMPDIR. The test process stays in the
root namespace and reaches the hosts through the bridge's address there.

Needs root (namespaces, links) and iproute2's `ip`. Names carry the test process's pid, so two
runs never collide; what a crashed earlier run left behind (its pid gone) is removed at start.
"""

import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg.rows import dict_row

from ..postgres import PostgresServer
from .http import request
from .polling import wait_until
from .processes import BIN_DIR, PROJECT_ROOT, ManagedProcess, S3Server, s3_client

# Namespaces are named "thc-<pid>-<host>", the bridge "thcbr<pid>", host-side veths "thc<pid>v<n>"
# (interface names hold at most 15 characters).
PREFIX = "thc"
HOSTS = ("db", "s3", "redis", "web", "worker1", "worker2")
WORKERS = ("worker1", "worker2")
# Each host listens on its own address, so every service keeps its usual port.
POSTGRES_PORT, S3_PORT, REDIS_PORT, WEB_PORT = 5432, 9000, 6379, 8000
BUCKET = "thumbnailer-cluster"
DATABASE_NAME = "thumbnailer"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *arguments], check=check, capture_output=True, text=True, timeout=30)


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def namespace_pids(namespace: str) -> list[int]:
    """Every process whose network namespace is `namespace`."""
    listed = ip("netns", "pids", namespace, check=False).stdout.split()
    return [int(pid) for pid in listed if pid.isdigit()]


def kill_namespace_processes(namespace: str) -> None:
    for pid in namespace_pids(namespace):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_stale_runs() -> None:
    """Delete the namespaces and bridges of earlier runs of this helper whose process is gone."""
    for line in ip("netns", "list").stdout.splitlines():
        match = re.match(rf"({PREFIX}-(\d+)-\S+)", line)
        if match and not pid_alive(int(match.group(2))):
            kill_namespace_processes(match.group(1))
            ip("netns", "delete", match.group(1), check=False)
    for line in ip("-o", "link", "show", "type", "bridge").stdout.splitlines():
        match = re.match(rf"\d+: ({PREFIX}br(\d+))[:@]", line)
        if match and not pid_alive(int(match.group(2))):
            ip("link", "delete", match.group(1), check=False)


def free_subnet(preferred: int) -> str:
    """A 10.231.N.0/24 that no interface of the root namespace uses yet, e.g. '10.231.17'."""
    used = set(re.findall(r"inet 10\.231\.(\d+)\.", ip("-o", "-4", "addr", "show").stdout))
    for offset in range(250):
        candidate = (preferred + offset) % 250 + 1
        if str(candidate) not in used:
            return f"10.231.{candidate}"
    raise RuntimeError("every 10.231.N.0/24 is taken")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and of their children already reaped, from /proc."""
    total_ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat; fields[0] is field 3.
        total_ticks += sum(int(value) for value in fields[11:15])
    return total_ticks / CLOCK_TICKS


@dataclass
class Host:
    name: str
    address: str
    namespace: str
    veth: str  # the root namespace's end of its link; down = the host is cut off
    folder: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def media_root(self) -> Path:
        return self.folder / "media"

    @property
    def temp_dir(self) -> Path:
        return self.folder / "tmp"

    def files_left(self) -> list[str]:
        """Every file under this host's MEDIA_ROOT and TMPDIR (both should stay empty)."""
        return sorted(
            str(path.relative_to(self.folder))
            for folder in (self.media_root, self.temp_dir)
            for path in folder.rglob("*")
            if not path.is_dir()
        )

    def cpu_seconds(self) -> float:
        return cpu_seconds(namespace_pids(self.namespace))


class Cluster:
    """Six hosts on a private /24; start() builds and starts everything, stop() always removes it all.

    `settings_env` is extra environment for every host's processes (short time limits, leases).
    """

    def __init__(self, folder: Path, *, settings_env: dict | None = None):
        self.run_id = os.getpid()
        self.folder = folder
        self.settings_env = {key: str(value) for key, value in (settings_env or {}).items()}
        self.bridge = f"{PREFIX}br{self.run_id}"
        self.subnet = ""
        self.bridge_address = ""
        self.hosts: dict[str, Host] = {}
        self.postgres: PostgresServer | None = None
        self.namespaces_made: list[str] = []
        self.bridge_made = False

    # --- the network ---

    def create_network(self) -> None:
        remove_stale_runs()
        self.subnet = free_subnet(self.run_id % 250)
        self.bridge_address = f"{self.subnet}.1"
        ip("link", "add", self.bridge, "type", "bridge")
        self.bridge_made = True
        ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for number, name in enumerate(HOSTS):
            self.hosts[name] = self.create_host(name, number)

    def create_host(self, name: str, number: int) -> Host:
        host = Host(
            name=name,
            address=f"{self.subnet}.{10 + number}",
            namespace=f"{PREFIX}-{self.run_id}-{name}",
            veth=f"{PREFIX}{self.run_id}v{number}",
            folder=self.folder / name,
        )
        host.media_root.mkdir(parents=True)
        host.temp_dir.mkdir()
        ip("netns", "add", host.namespace)
        self.namespaces_made.append(host.namespace)
        inner = f"{PREFIX}{self.run_id}p{number}"
        ip("link", "add", host.veth, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", host.namespace)
        ip("link", "set", host.veth, "master", self.bridge)
        ip("link", "set", host.veth, "up")
        self.in_namespace(host, "ip", "link", "set", "lo", "up")
        self.in_namespace(host, "ip", "link", "set", inner, "name", "eth0")
        self.in_namespace(host, "ip", "addr", "add", f"{host.address}/24", "dev", "eth0")
        self.in_namespace(host, "ip", "link", "set", "eth0", "up")
        return host

    def in_namespace(self, host: Host, *command: str) -> None:
        ip("netns", "exec", host.namespace, *command)

    def cut_off(self, name: str) -> None:
        """Take the host's link down: its packets go nowhere until restore()."""
        ip("link", "set", self.hosts[name].veth, "down")

    def restore(self, name: str) -> None:
        ip("link", "set", self.hosts[name].veth, "up")

    @contextmanager
    def unreachable(self, name: str):
        self.cut_off(name)
        try:
            yield
        finally:
            self.restore(name)

    def restore_all(self) -> None:
        for name in self.hosts:
            self.restore(name)

    # --- the services ---

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.hosts['db'].address}:{POSTGRES_PORT}/{DATABASE_NAME}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.hosts['redis'].address}:{REDIS_PORT}/0"

    @property
    def s3_url(self) -> str:
        return f"http://{self.hosts['s3'].address}:{S3_PORT}"

    @property
    def web_url(self) -> str:
        return f"http://{self.hosts['web'].address}:{WEB_PORT}"

    def host_env(self, host: Host) -> dict:
        """What a host of the site is configured with: the other hosts' addresses, its own folders."""
        session_only = ("THUMBNAILER_TEST_DATABASE", "THUMBNAILER_TEST_POSTGRES", "DATABASE_URL", "REDIS_URL")
        env = {key: value for key, value in os.environ.items() if key not in session_only}
        env.update(
            PYTHONUNBUFFERED="1",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            MEDIA_ROOT=str(host.media_root),
            TMPDIR=str(host.temp_dir),
            DJANGO_ALLOWED_HOSTS=host_name_of(self.web_url),
            AWS_STORAGE_BUCKET_NAME=BUCKET,
            AWS_S3_ENDPOINT_URL=self.s3_url,
            AWS_S3_REGION_NAME=S3Server.REGION,
            **S3Server.CREDENTIALS,
            **self.settings_env,
        )
        return env

    def run(
        self, name: str, process_name: str, command: list[str], env: dict | None = None
    ) -> ManagedProcess:
        """Start a long-running process on a host; it is stopped with the cluster."""
        host = self.hosts[name]
        process = ManagedProcess(
            f"cluster-{process_name}",
            ["ip", "netns", "exec", host.namespace, *command],
            env=env if env is not None else self.host_env(host),
        ).start()
        host.processes.append(process)
        return process

    def start_database(self) -> None:
        host = self.hosts["db"]
        self.postgres = PostgresServer(
            POSTGRES_PORT,
            listen_address=host.address,
            trusted_subnet=f"{self.subnet}.0/24",
            command_prefix=("ip", "netns", "exec", host.namespace),
        )
        admin_url = self.postgres.start()
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE_NAME}")

    def start_object_store(self) -> None:
        host = self.hosts["s3"]
        command = [sys.executable, "-m", "moto.server", "-H", host.address, "-p", str(S3_PORT)]
        server = self.run(
            "s3", "s3", command, env=dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(host.temp_dir))
        )
        wait_until(lambda: answers(server, f"{self.s3_url}/"), timeout=30, message="the S3 host answering")
        self.s3_client().create_bucket(Bucket=BUCKET)

    def start_redis(self) -> None:
        from thumbnailer_project.localredis import find_redis_server

        host = self.hosts["redis"]
        command = [find_redis_server(), "--port", str(REDIS_PORT), "--bind", host.address]
        command += ["--dir", str(host.folder), "--save", "", "--appendonly", "no"]
        # Other hosts connect over the bridge; protected mode would only let loopback in.
        command += ["--protected-mode", "no"]
        self.run("redis", "redis", command)
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1)
        wait_until(lambda: pings(client), timeout=15, message="the Redis host answering")

    def migrate(self) -> None:
        """`manage.py migrate` once, from the web host, as a release would."""
        host = self.hosts["web"]
        command = ["ip", "netns", "exec", host.namespace, sys.executable, "manage.py", "migrate", "--noinput"]
        subprocess.run(
            command, cwd=PROJECT_ROOT, env=self.host_env(host), check=True, capture_output=True, timeout=180
        )

    def start_web(self) -> None:
        command = [
            str(BIN_DIR / "gunicorn"),
            "thumbnailer_project.wsgi",
            "--bind",
            f"{self.hosts['web'].address}:{WEB_PORT}",
        ]
        command += ["--workers", "2", "--threads", "16", "--access-logfile", "-"]
        server = self.run("web", "web", command)
        wait_until(lambda: answers(server, f"{self.web_url}/"), timeout=60, message="the web host answering")

    def start_beat(self) -> None:
        schedule = self.hosts["web"].folder / "beat-schedule"
        command = [
            str(BIN_DIR / "celery"),
            "-A",
            "thumbnailer_project",
            "beat",
            "-l",
            "info",
            "--schedule",
            str(schedule),
        ]
        self.run("web", "beat", command).wait_for_log("beat: Starting...", timeout=60)

    def start_worker(self, name: str) -> ManagedProcess:
        """`celery worker -c 1` on a worker host, named `<host>@...` in its log and in remote control."""
        command = [str(BIN_DIR / "celery"), "-A", "thumbnailer_project", "worker", "-l", "info"]
        command += ["-P", "prefork", "-c", "1", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
        worker = self.run(name, name, command)
        worker.wait_for_log("ready.", timeout=60)
        return worker

    def worker(self, name: str) -> ManagedProcess:
        """The host's current worker process (the last one started there)."""
        return self.hosts[name].processes[-1]

    def worker_running(self, name: str) -> bool:
        processes = self.hosts[name].processes
        return bool(processes) and processes[-1].process.poll() is None

    def restart_worker(self, name: str) -> ManagedProcess:
        """Stop whatever runs on a worker host and start a fresh worker, as a supervisor would."""
        self.worker(name).stop(timeout=10)
        kill_namespace_processes(self.hosts[name].namespace)
        return self.start_worker(name)

    def kill_worker_host(self, name: str) -> None:
        """SIGKILL every process of a worker host at once, as a machine that loses power."""
        kill_namespace_processes(self.hosts[name].namespace)
        self.worker(name).process.wait(timeout=10)

    def start(self) -> "Cluster":
        self.create_network()
        self.start_database()
        self.start_object_store()
        self.start_redis()
        self.migrate()
        self.start_web()
        self.start_beat()
        for name in WORKERS:
            self.start_worker(name)
        return self

    def stop(self) -> None:
        """Stop every process, then remove the namespaces and the bridge; safe after a failed start."""
        for host in reversed(self.hosts.values()):
            for process in reversed(host.processes):
                process.stop(timeout=10)
        if self.postgres is not None:
            self.postgres.stop()
        for namespace in self.namespaces_made:
            kill_namespace_processes(namespace)  # anything a stopped process left behind
            ip("netns", "delete", namespace, check=False)
        if self.bridge_made:
            ip("link", "delete", self.bridge, check=False)

    # --- looking inside, from the test process ---

    def s3_client(self):
        return s3_client(self.s3_url)

    def jobs(self, job_ids: list[str]) -> dict[str, dict]:
        """The Job rows of these ids, read from the db host, as dicts."""
        with psycopg.connect(self.database_url, connect_timeout=5, row_factory=dict_row) as db:
            rows = db.execute(
                "SELECT * FROM thumbnailer_job WHERE id = ANY(%s::uuid[])", [job_ids]
            ).fetchall()
        return {str(row["id"]): row for row in rows}

    def job_ids_named(self, client_names: list[str]) -> dict[str, str]:
        """The job id of each upload by its file name (names unique to the test that sends them)."""
        with psycopg.connect(self.database_url, connect_timeout=5) as db:
            rows = db.execute(
                "SELECT client_name, id FROM thumbnailer_job WHERE client_name = ANY(%s)", [client_names]
            ).fetchall()
        return {name: str(job_id) for name, job_id in rows}

    def cpu_by_host(self) -> dict[str, float]:
        return {name: host.cpu_seconds() for name, host in self.hosts.items()}

    def logs(self) -> str:
        return "\n".join(
            f"--- {process.name} log ---\n{process.log()[-20000:]}"
            for host in self.hosts.values()
            for process in host.processes
        )


def host_name_of(url: str) -> str:
    return url.split("//", 1)[1].split(":", 1)[0]


def answers(server: ManagedProcess, url: str) -> bool:
    if server.process.poll() is not None:
        raise RuntimeError(f"{server.name} exited while starting:\n{server.log()[-4000:]}")
    try:
        return request("GET", url, timeout=2).status == 200
    except OSError:
        return False


def pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
