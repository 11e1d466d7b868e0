"""`make run`: web, worker and beat (and a private Redis when needed) under one Ctrl-C.

It runs the product as people use it: debug off, so every error is the product's own page or
JSON, and static files served by WhiteNoise from a collected folder. `DJANGO_DEBUG=1 make run`
turns Django's debug pages on, as an explicit choice.
Redis: REDIS_URL if set; otherwise a private server on a free port, kept in .run/.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from honcho.manager import Manager

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
# No access log: nearly every request is a status poll, and a line for each costs the web process
# CPU on every poll. Errors are still logged; in production the front proxy logs requests.
# 16 threads: a status request with ?wait= (or an upload with `Prefer: wait`) holds one while
# it waits, and at most THUMBNAILER_STATUS_WAIT_SLOTS (12) of them do, which leaves 4 for new
# uploads and pages.
# scripts/loadtest.py starts gunicorn with these same options.
WEB_OPTIONS = "--workers 2 --threads 16"

sys.path.insert(0, str(ROOT))
from thumbnailer_project import localredis  # noqa: E402


def run_environment(environ: dict[str, str], *, run_dir: Path = RUN_DIR) -> dict[str, str]:
    """The environment `make run` starts every process with: the caller's, plus local defaults.

    Each default gives way to a value the caller set. Debug is off; plain HTTP on 127.0.0.1
    (no HTTPS redirect, no Secure-only cookies); a secret key made once and kept in .run/, so
    sessions survive a restart.
    """
    env = dict(environ, PYTHONUNBUFFERED="1")
    env.setdefault("DJANGO_DEBUG", "0")
    env.setdefault("DJANGO_HTTPS", "0")
    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = local_secret_key(run_dir / "secret_key")
    return env


def local_secret_key(path: Path) -> str:
    """A random key stored at `path` (readable by its owner only), made on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def main() -> int:
    port = os.environ.get("PORT", "8000")
    env = run_environment(os.environ)
    bin_dir = Path(sys.executable).parent
    manage = [str(bin_dir / "python"), str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "--verbosity", "0"], env=env, check=True)

    manager = Manager()
    if not env.get("REDIS_URL"):
        redis_port = localredis.free_port()
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        RUN_DIR.mkdir(exist_ok=True)
        redis_command = (
            f"{localredis.find_redis_server()} --port {redis_port} --bind 127.0.0.1 "
            f"--dir {RUN_DIR} --save '' --appendonly no"
        )
        manager.add_process("redis", redis_command, env=env)

    manager.add_process(
        "web", f"{bin_dir}/gunicorn thumbnailer_project.wsgi --bind 127.0.0.1:{port} {WEB_OPTIONS}", env=env
    )
    manager.add_process("worker", f"{bin_dir}/celery -A thumbnailer_project worker -l info", env=env)
    manager.add_process(
        "beat",
        f"{bin_dir}/celery -A thumbnailer_project beat -l info --schedule {RUN_DIR / 'celerybeat-schedule'}",
        env=env,
    )
    debug = "on" if env["DJANGO_DEBUG"] in ("1", "true", "yes", "on") else "off"
    print(f"Thumbnailer: http://127.0.0.1:{port}/  (debug {debug}; Ctrl-C stops everything)", flush=True)
    manager.loop()
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
