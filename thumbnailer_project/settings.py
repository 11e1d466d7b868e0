"""Settings for Thumbnailer: one file, driven by environment variables.

The defaults are safe for `make run` on a laptop. Production sets DJANGO_DEBUG=0,
DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and, usually, DATABASE_URL and REDIS_URL.
Every variable is listed in the README's configuration table.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from thumbnailer import limits

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, old_name: str = "") -> int:
    """An integer setting; `old_name` is the variable's earlier name, still read when the new one is unset."""
    try:
        return limits.env_int(name, default, old_name=old_name)
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

# A development key is only acceptable while DEBUG is on; production must bring its own.
# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-development-key-for-make-run-only-0123456789abcdef"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "widget_tweaks",
    "thumbnailer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise serves the app's own static files under gunicorn, with no extra server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "thumbnailer_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "thumbnailer_project.wsgi.application"

# SQLite by default; DATABASE_URL (e.g. postgres://user:pass@host/db) switches engines.
# https://github.com/jazzband/dj-database-url
# Connections are kept for a minute, per web thread and worker process, on every engine:
# opening a SQLite one (its pragmas and Django's SQL functions) costs ~0.8 ms, more than a
# status query.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one SQLite file at once: WAL lets readers run beside a
    # writer, IMMEDIATE takes the write lock up front instead of failing mid-transaction,
    # and the timeout waits for the lock instead of answering "database is locked".
    # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # The test suite's worker processes open the test database too, so it must be a file.
    if os.environ.get("THUMBNAILER_TEST_DATABASE"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["THUMBNAILER_TEST_DATABASE"]}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that stops answering fails a query within seconds instead of holding a
    # web thread or a worker for the kernel's ~15 minutes of TCP retries: uploads answer 503,
    # and a worker's time limits keep working (its main process records failures in the
    # database). Options in DATABASE_URL's query string win. libpq's own keywords:
    # https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": 5,
        # A query sent and not acknowledged for 10 s (in ms) fails. A connection silent for
        # 30 s is probed: one waiting on a host that died unseen fails then, while idle
        # persistent connections outlive a shorter outage (each dead one costs a request a 503).
        "tcp_user_timeout": 10_000,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        **DATABASES["default"].get("OPTIONS", {}),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# `python manage.py test` runs the pytest suite, the same one `make test` runs.
TEST_RUNNER = "thumbnailer_project.test_runner.PytestTestRunner"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic puts files here for WhiteNoise (make run and the image do it; DEBUG serves from the apps).
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))

# Uploads and outputs. Everything goes through default_storage, so an S3-compatible
# backend can replace the filesystem with STORAGES alone.
MEDIA_URL = "/media/"
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / "media"))
# Setting a bucket puts uploads and outputs in an S3-compatible store (hosts share no disk);
# the bucket must exist. Pages keep /media/ URLs, which redirect to links that expire.
# https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL", "")  # MinIO, Ceph, R2...; empty for AWS itself
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", "us-east-1")
# Seconds a download link lives: long enough to start a large zip, short enough not to share.
AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 3600)
MEDIA_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if AWS_STORAGE_BUCKET_NAME:
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    # An object store that stops answering fails a request within seconds (botocore's
    # defaults wait 60 s to connect and 60 s to read, tried up to 5 times): uploads answer 503
    # and a worker retries later instead of hanging past its lease. Given a client config,
    # django-storages no longer builds its own, so the addressing style and signature go here too.
    # https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    AWS_S3_CLIENT_CONFIG = Config(
        connect_timeout=3,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 2},
        s3={"addressing_style": "path" if AWS_S3_ENDPOINT_URL else None},
        signature_version="s3v4",
    )

    MEDIA_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL or None,
            # Unset keys leave boto3 its own lookup (instance roles, ~/.aws).
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            "region_name": AWS_S3_REGION_NAME,
            "signature_version": "s3v4",
            # Other S3-compatible stores answer path-style addresses; bucket subdomains need DNS.
            "addressing_style": "path" if AWS_S3_ENDPOINT_URL else None,
            "querystring_auth": True,
            "querystring_expire": AWS_QUERYSTRING_EXPIRE,
            # Outputs keep their names: a PUT to the same key replaces the file atomically.
            "file_overwrite": True,
            # Files read back (a worker's original) spool to the system temp dir above this,
            # so a 25 MiB upload is not held in memory twice; the temp file goes on close.
            "max_memory_size": 2_621_440,
            # Parts go one at a time (8 MiB each), not ten in parallel: a 25 MiB upload takes
            # 22 MiB of memory instead of 49 MiB, and is no slower on a nearby store.
            "transfer_config": TransferConfig(use_threads=False),
        },
    }
STORAGES = {
    "default": MEDIA_STORAGE,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Serve media through Django (with nosniff and a content type decided by us). Turn off
# when a front server or object store serves MEDIA_URL itself.
THUMBNAILER_SERVE_MEDIA = env_bool("THUMBNAILER_SERVE_MEDIA", True)

# --- Limits; each can be changed from the environment ---
# 25 MiB holds any phone photo, including 48 MP HEIC and large PNG screenshots.
THUMBNAILER_MAX_UPLOAD_BYTES = env_int("THUMBNAILER_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)
# 100 MP covers every camera on sale; beyond it one decode can take gigabytes of memory.
THUMBNAILER_MAX_PIXELS = limits.max_pixels()
# Animated thumbnails keep at most this many frames; longer animations give the first frame.
THUMBNAILER_MAX_FRAMES = limits.max_frames()
# Several files can go in one form post; this bounds the request as a whole.
THUMBNAILER_MAX_FILES_PER_POST = env_int("THUMBNAILER_MAX_FILES_PER_POST", 20)
# Thumbnail boxes: the default, the choices offered on the page, and the largest side accepted.
THUMBNAILER_DEFAULT_SIZES = limits.default_sizes()
THUMBNAILER_SIZE_CHOICES = env_list("THUMBNAILER_SIZE_CHOICES", "64x64,128x128,256x256,512x512")
THUMBNAILER_LARGEST_SIDE = limits.largest_side()
# How many recent jobs the page lists for a visitor.
THUMBNAILER_RECENT_JOBS = env_int("THUMBNAILER_RECENT_JOBS", 12)
# Requests that may wait for their job's end at once, per web process: status reads with
# `?wait=N` and uploads with `Prefer: wait=N`. Each holds a server thread while it waits: keep
# it below gunicorn's --threads (16 in `make run`) so new uploads always find one free. Beyond
# it a request answers at once, as without a wait.
THUMBNAILER_STATUS_WAIT_SLOTS = env_int("THUMBNAILER_STATUS_WAIT_SLOTS", 12)
# Jobs (and their files) older than this are purged by beat; their status answers 410.
THUMBNAILER_JOB_RETENTION = timedelta(
    days=env_int("THUMBNAILER_JOB_RETENTION_DAYS", 7, old_name="JOB_RETENTION_DAYS")
)
# A job still PENDING this long after it was accepted is sent to the broker again.
THUMBNAILER_STALE_AFTER_SECONDS = env_int("THUMBNAILER_STALE_AFTER_SECONDS", 120)
# A worker's claim on a job lasts the hard time limit plus this margin (for clocks that differ
# between machines), so a job is only ever taken over from a worker that died.
THUMBNAILER_LEASE_MARGIN_SECONDS = env_int("THUMBNAILER_LEASE_MARGIN_SECONDS", 10)
# A message delivered this many times without finishing fails the job (an input that kills workers).
THUMBNAILER_MAX_DELIVERIES = env_int("THUMBNAILER_MAX_DELIVERIES", 3)

# --- Webhooks: a job's status JSON POSTed to its callback_url when it ends ---
# The HMAC-SHA256 key of X-Thumbnailer-Signature, shared with the receivers. Without one,
# callback URLs are refused: an unsigned webhook would be anyone's to forge.
THUMBNAILER_WEBHOOK_SECRET = env_str("THUMBNAILER_WEBHOOK_SECRET", "")
# Callback URLs on loopback or private addresses are refused (SSRF) unless this is on: for
# tests, and for deployments whose receivers live on the same private network.
THUMBNAILER_WEBHOOK_ALLOW_PRIVATE = env_bool("THUMBNAILER_WEBHOOK_ALLOW_PRIVATE", False)
# A receiver that does not answer within this many seconds counts as a failed delivery.
THUMBNAILER_WEBHOOK_TIMEOUT_SECONDS = env_int("THUMBNAILER_WEBHOOK_TIMEOUT_SECONDS", 10)
# Failed deliveries are retried after 15, 30, 60, then every 120 s (kept under the broker's
# visibility timeout, so a waiting retry is never delivered twice) until this many seconds
# have passed since the first try; then the webhook is recorded as given up.
THUMBNAILER_WEBHOOK_RETRY_BASE_SECONDS = env_int("THUMBNAILER_WEBHOOK_RETRY_BASE_SECONDS", 15)
THUMBNAILER_WEBHOOK_GIVE_UP_AFTER_SECONDS = env_int("THUMBNAILER_WEBHOOK_GIVE_UP_AFTER_SECONDS", 3600)

# A body refused from its declared size is still read (and dropped) up to this many bytes,
# so the client gets to read the 413 instead of a broken pipe; past it, the connection closes.
THUMBNAILER_DISCARD_BODY_BYTES = env_int("THUMBNAILER_DISCARD_BODY_BYTES", 128 * 1024 * 1024)

# Let Django stream any upload above 2.5 MiB to a temporary file instead of memory. The upload
# views put thumbnailer.upload_handlers' size cap in front of Django's default handlers.
# https://docs.djangoproject.com/en/5.2/ref/settings/#file-upload-max-memory-size
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Celery (https://docs.celeryq.dev/en/stable/userguide/configuration.html) ---
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport with one redis-py client per channel, not one per publish and ack
# (~65 us each; see broker_transport.py). Only for plain redis://: an explicit transport would
# drop the TLS that kombu gives a rediss:// URL.
if REDIS_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "thumbnailer_project.broker_transport:Transport"
CELERY_RESULT_BACKEND = REDIS_URL
# JSON only: a pickle message from anyone who can reach Redis would run code in the worker.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Ack after the work is done, and give the message back if the worker dies, so no job is lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: a slow image never holds others hostage in a prefetch buffer.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless
# this is set (a new SQLite connection cost 0.8 ms a job). celery.py instead does what Django
# does around a request: it closes a connection only when it is broken or past CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = 1_000
# Soft limit raises inside the task (FAILURE "timeout"); the hard limit kills a stuck decoder.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("THUMBNAILER_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("THUMBNAILER_HARD_TIME_LIMIT", 90)
# Unacked messages come back after this many seconds: it must exceed the hard limit,
# or a long task would be delivered twice while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 60,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    # One retry, not Celery's 20: a task's progress report gives up in seconds when Redis is
    # unreachable (the task goes on without it) instead of stalling past the time limit.
    "retry_policy": {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 0.2},
}
# The Redis result backend reads its socket timeouts from these, not from the transport options
# above: without them a progress report waits on an unreachable Redis for as long as TCP does.
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_REDIS_SOCKET_TIMEOUT = 5
# Publishing from a web request must fail fast when Redis is down (the view answers 503).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Report STARTED so the page can say "working" before the first progress update.
CELERY_TASK_TRACK_STARTED = True
# Results live in the database; Redis keeps task states only for a day.
CELERY_RESULT_EXPIRES = timedelta(days=1)
# A pool child that has grown past this (KiB) is replaced after its current task.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("THUMBNAILER_WORKER_MAX_MEMORY_KIB", 512_000)
# No task events by default: each is a Redis PUBLISH from the web process or the worker for
# every job (4 a job), whether anyone listens or not. Flower turns worker events on when it
# starts (its enable_events default), which is the one time they are wanted.
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SEND_SENT_EVENT = False
# Celery's own defaults, written out because every publish reads them: a key missing from
# Django settings costs Celery ~13 us a lookup against ~4 for one that is set (4 lookups of
# these 4 keys cost ~60 us of a ~470 us publish).
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_REPR_MAXLEVELS = 3
CELERY_BROKER_POOL_ACQUIRE_TIMEOUT = None

# Beat schedule. Intervals come from the environment so tests and operators can change them
# without editing code; the names without the THUMBNAILER_ prefix are the earlier ones. The
# daily digest (a crontab, in TIME_ZONE) is added in celery.py: importing celery.schedules here
# would load Celery into every process that reads settings, the thumbnail CLI among them.
THUMBNAILER_DIGEST_HOUR = env_int("THUMBNAILER_DIGEST_HOUR", 15, old_name="DIGEST_HOUR")
THUMBNAILER_DIGEST_MINUTE = env_int("THUMBNAILER_DIGEST_MINUTE", 5, old_name="DIGEST_MINUTE")
CELERY_BEAT_SCHEDULE = {
    "summarize": {
        "task": "thumbnailer.tasks.summarize",
        "schedule": float(
            env_int("THUMBNAILER_SUMMARY_INTERVAL_SECONDS", 60, old_name="SUMMARY_INTERVAL_SECONDS")
        ),
    },
    "purge-expired": {
        "task": "thumbnailer.tasks.purge_expired",
        "schedule": float(
            env_int("THUMBNAILER_PURGE_INTERVAL_SECONDS", 3600, old_name="PURGE_INTERVAL_SECONDS")
        ),
    },
    "requeue-stale-jobs": {
        "task": "thumbnailer.tasks.requeue_stale_jobs",
        "schedule": float(
            env_int("THUMBNAILER_REQUEUE_INTERVAL_SECONDS", 60, old_name="REQUEUE_INTERVAL_SECONDS")
        ),
    },
}

# --- Email: the daily digest goes to ADMINS; console backend unless configured ---
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "thumbnailer@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [(address.split("@")[0], address) for address in env_list("DJANGO_ADMINS", "admin@localhost")]

# --- Security: strict when DEBUG is off (python manage.py check --deploy is clean) ---
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    # Production is served over HTTPS, behind a TLS-terminating proxy that sets
    # X-Forwarded-Proto. DJANGO_HTTPS=0 is for plain HTTP on a private address (docker
    # compose on a laptop): browsers never send Secure cookies over HTTP, so with them on
    # every form post would fail its CSRF check.
    HTTPS = env_bool("DJANGO_HTTPS", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", HTTPS)
    SESSION_COOKIE_SECURE = HTTPS
    CSRF_COOKIE_SECURE = HTTPS
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a promise to browser vendors that the operator makes, not the code.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
