"""Lets `python manage.py test` run the same pytest suite as `make test`.

The runner shape is the one documented by pytest-django ("Use the Django test runner"),
except that pytest runs in a fresh interpreter: by the time `manage.py test` calls us,
settings are already loaded in this process, and the suite must choose its own Redis
port, media folder and test database before they are.
"""

import subprocess
import sys


class PytestTestRunner:
    def __init__(self, verbosity=1, failfast=False, keepdb=False, **kwargs):
        self.verbosity = verbosity
        self.failfast = failfast
        self.keepdb = keepdb

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--keepdb", action="store_true", help="Preserve the test DB between runs.")

    def run_tests(self, test_labels, **kwargs):
        argv = [sys.executable, "-m", "pytest"]
        if self.verbosity == 0:
            argv.append("--quiet")
        elif self.verbosity >= 2:
            argv.append("-" + "v" * (self.verbosity - 1))
        if self.failfast:
            argv.append("--exitfirst")
        if self.keepdb:
            argv.append("--reuse-db")
        argv.extend(test_labels)
        return subprocess.call(argv)
