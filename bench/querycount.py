"""Run gunicorn or celery with every SQL statement counted, for `make loadtest`.

    python bench/querycount.py COUNT_DIR gunicorn|celery ARGS...

Each process (gunicorn workers and celery pool children included, as they fork from the
process this starts) keeps its counts in COUNT_DIR/<pid>, overwritten in place after every
statement, so the figures are exact even for a process killed at teardown. Writing one
small line per statement costs microseconds against a Django query's hundreds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class StatementCounter:
    """Counts of this process's statements, mirrored to COUNT_DIR/<pid>."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.pid = 0
        self.descriptor = -1
        self.statements = 0
        self.writes = 0

    def __call__(self, execute, sql, params, many, context):
        if self.pid != os.getpid():  # a forked child starts its own count
            self.pid = os.getpid()
            self.descriptor = os.open(self.directory / str(self.pid), os.O_WRONLY | os.O_CREAT, 0o600)
            self.statements = self.writes = 0
        self.statements += 1
        self.writes += sql.lstrip().upper().startswith(WRITE_VERBS)
        os.pwrite(self.descriptor, f"{self.statements} {self.writes}\n".ljust(32).encode(), 0)
        return execute(sql, params, many, context)


def install(directory: Path) -> None:
    """Count every statement on every database connection this process (or its children) opens."""
    from django.db.backends.signals import connection_created

    counter = StatementCounter(directory)

    def wrap(sender, connection, **kwargs):
        if counter not in connection.execute_wrappers:
            connection.execute_wrappers.append(counter)

    connection_created.connect(wrap, weak=False)


def read_counts(directory: Path) -> dict[int, tuple[int, int]]:
    """{pid: (statements, writes)} of every process that ran a statement."""
    counts = {}
    for path in directory.iterdir():
        statements, writes = path.read_text().split()
        counts[int(path.name)] = (int(statements), int(writes))
    return counts


def main() -> None:
    directory, program, *arguments = sys.argv[1:]
    # Python put bench/ first on the path, where bench.py would shadow the bench package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    install(Path(directory))
    sys.argv = [program, *arguments]
    if program == "gunicorn":
        from gunicorn.app.wsgiapp import run
    elif program == "celery":
        from celery.__main__ import main as run
    else:
        raise SystemExit(f"querycount: runs gunicorn or celery, not {program!r}")
    sys.exit(run())


if __name__ == "__main__":
    main()
