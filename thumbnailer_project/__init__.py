# Load the Celery app whenever Django starts, so shared_task binds to it
# (the pattern from Celery's own Django example).
from .celery import app as celery_app

__all__ = ("celery_app",)
