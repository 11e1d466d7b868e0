"""Startup checks: is the configured database, broker and storage usable? Said in words.

The probes (health.py) reach over the network, so, like Django's own checks that need a
database, they run only when asked for one:

    python manage.py check --deploy --database default --tag thumbnailer

which reports each fault and exits 1. The web process (wsgi.py) and the worker (celery.py)
log the same words when they start, and start anyway: a service may come up later, and
/healthz/ keeps reporting until it does.
"""

import logging

from django.core.checks import Error, register

from . import health

logger = logging.getLogger(__name__)

CHECK_IDS = {"Database": "thumbnailer.E001", "Broker": "thumbnailer.E002", "Storage": "thumbnailer.E003"}


@register("thumbnailer", deploy=True)
def check_services(app_configs, databases=None, **kwargs):
    """One error per service that cannot be used; nothing unless the caller allows network access."""
    if not databases:
        return []
    return [
        Error(fault.problem, obj=fault.service, id=CHECK_IDS[fault.service])
        for fault in health.service_faults()
    ]


def log_service_faults(process: str) -> None:
    """Log, once at start, what this process cannot use and why; never stop it from starting."""
    faults = health.service_faults()
    for fault in faults:
        logger.error(
            "Startup check (%s): %s. Starting anyway; /healthz/ answers 503 until it is fixed.",
            process,
            fault,
        )
    if not faults:
        logger.info("Startup check (%s): database, broker and storage answer.", process)
