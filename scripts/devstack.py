"""`make run`: web, worker and beat (and a private Redis when needed) under one Ctrl-C.

Redis: REDIS_URL if set; otherwise a private server on a free port, kept in .run/.
"""
import os
import sys
from pathlib import Path

from honcho.manager import Manager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from thumbnailer_project import localredis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"


def main() -> int:
    port = os.environ.get("PORT", "8000")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    bin_dir = Path(sys.executable).parent
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
        "web",
        f"{bin_dir}/gunicorn thumbnailer_project.wsgi --bind 127.0.0.1:{port} "
        "--workers 2 --threads 4 --access-logfile -",
        env=env,
    )
    manager.add_process("worker", f"{bin_dir}/celery -A thumbnailer_project worker -l info", env=env)
    manager.add_process(
        "beat",
        f"{bin_dir}/celery -A thumbnailer_project beat -l info "
        f"--schedule {RUN_DIR / 'celerybeat-schedule'}",
        env=env,
    )
    print(f"Thumbnailer: http://127.0.0.1:{port}/  (Ctrl-C stops everything)", flush=True)
    manager.loop()
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
