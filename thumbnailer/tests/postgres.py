"""A private PostgreSQL server for the test session (THUMBNAILER_TEST_POSTGRES=1), on a free port.

Debian's server binaries (apt-get install postgresql) in a throwaway data folder: trust
authentication on 127.0.0.1 only (or on the address and subnet a simulated cluster gives it),
fsync off. PostgreSQL refuses to run as root, so as root the folder belongs to the `postgres`
user and the commands run as that user.
"""

import glob
import os
import shutil
import subprocess
import tempfile


def server_binaries() -> str:
    """The folder holding initdb and pg_ctl, or raise FileNotFoundError saying how to get them."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise FileNotFoundError("No PostgreSQL server found: apt-get install postgresql (make test does it).")


class PostgresServer:
    def __init__(
        self,
        port: int,
        *,
        listen_address: str = "127.0.0.1",
        trusted_subnet: str = "",
        command_prefix: tuple[str, ...] = (),
    ):
        """`trusted_subnet` (e.g. 10.231.5.0/24) may connect too; `command_prefix` runs the server
        somewhere else, e.g. ("ip", "netns", "exec", NAME) in a network namespace."""
        self.port = port
        self.listen_address = listen_address
        self.trusted_subnet = trusted_subnet
        self.command_prefix = list(command_prefix)
        self.bin = server_binaries()
        # Not under the session folder: that one is private to root, and the server may run as postgres.
        self.folder = tempfile.mkdtemp(prefix="thumbnailer-pg-")
        self.data = os.path.join(self.folder, "data")
        self.as_postgres = os.geteuid() == 0

    def _run(self, *command: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run(
            [*self.command_prefix, *as_user, *command], check=True, capture_output=True, timeout=120
        )

    def start(self) -> str:
        """Start the server; return the DATABASE_URL of its `postgres` database."""
        if self.as_postgres:
            os.chmod(self.folder, 0o755)
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        if self.trusted_subnet:
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as rules:
                rules.write(f"host all all {self.trusted_subnet} trust\n")
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses={self.listen_address}"
            " -c fsync=off -c max_connections=200"
        )
        self._run(
            f"{self.bin}/pg_ctl", "-D", self.data, "-o", options, "-l", f"{self.folder}/log", "-w", "start"
        )
        return f"postgres://postgres@{self.listen_address}:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
