"""A health check for load balancers and operators: can we reach the database, the broker and storage?"""

import logging
import uuid

from celery import current_app
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception as error:
        logger.warning("health: database unreachable: %r", error)
        return False


def broker_ok() -> bool:
    try:
        with current_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception as error:
        logger.warning("health: broker unreachable: %r", error)
        return False


def storage_ok() -> bool:
    """Write and delete a tiny file: a missing folder or bucket, or refused credentials, show here."""
    probe = f".healthz-{uuid.uuid4().hex}"
    try:
        saved_as = default_storage.save(probe, ContentFile(b"ok"))
        default_storage.delete(saved_as)
        return True
    except Exception as error:
        logger.warning("health: storage unusable: %r", error)
        return False


@require_GET
def health(request):
    """200 when web can take uploads (database, broker and storage usable), else 503."""
    checks = {"database": database_ok(), "broker": broker_ok(), "storage": storage_ok()}
    healthy = all(checks.values())
    body = {"status": "ok" if healthy else "unavailable"}
    body.update({name: "ok" if ok else "unreachable" for name, ok in checks.items()})
    return JsonResponse(body, status=200 if healthy else 503)
