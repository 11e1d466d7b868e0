"""The Celery app: configured from Django settings under the CELERY_ namespace."""

import gc
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thumbnailer_project.settings")

app = Celery("thumbnailer_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def schedule_daily_digest(sender, **kwargs):
    """The digest's crontab entry, beside CELERY_BEAT_SCHEDULE's intervals (see settings.py for why here)."""
    from celery.schedules import crontab
    from django.conf import settings

    sender.add_periodic_task(
        crontab(hour=settings.THUMBNAILER_DIGEST_HOUR, minute=settings.THUMBNAILER_DIGEST_MINUTE),
        sender.signature("thumbnailer.tasks.send_daily_digest"),
        name="send-daily-digest",
    )


@signals.worker_init.connect
def keep_consuming_after_a_failed_ack(**kwargs):
    """A Redis outage during an ack must not leave the worker idle for good (see broker_acks.py)."""
    from thumbnailer_project import broker_acks

    broker_acks.install()


@signals.worker_init.connect
def report_service_faults(**kwargs):
    """Log what the worker cannot use and why, before it connects; it starts anyway (thumbnailer/checks.py)."""
    from thumbnailer.checks import log_service_faults

    log_service_faults("worker")


@signals.worker_process_init.connect
def freeze_startup_objects(**kwargs):
    """Keep what each pool process inherited out of the garbage collector's scans (see wsgi.py)."""
    gc.freeze()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_broken_or_old_database_connections(**kwargs):
    """Around each task what Django does around each request (see CELERY_DB_REUSE_MAX in settings.py).

    A connection an error left unusable (the database restarted, the network dropped) is
    closed, so the next task, or the retry, connects afresh instead of failing on it.
    """
    from django.db import close_old_connections

    close_old_connections()
