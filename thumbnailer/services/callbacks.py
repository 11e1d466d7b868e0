"""Webhooks: queue a finished job's callback, send again those the broker refused, deliver, give up."""

import json
import logging

from celery import current_app
from django.conf import settings
from django.db.models import F
from kombu.exceptions import OperationalError as BrokerError

from .. import selectors, webhooks
from ..models import Job

logger = logging.getLogger(__name__)


DELIVER_WEBHOOK = "thumbnailer.tasks.deliver_webhook"


# Marks a webhook the broker refused when its job ended; jobs_requeue_stale() sends it again.
WEBHOOK_NOT_QUEUED = "not queued: "


def webhook_queue(*, job_id, callback_url: str) -> bool:
    """Queue the webhook of a job that just ended, if it has a callback URL; no one waits on it.

    False when the broker refused it: the job is marked, and the requeue task sends it later.
    """
    if not callback_url:
        return True
    try:
        current_app.send_task(DELIVER_WEBHOOK, args=[str(job_id)], ignore_result=True)
    except (BrokerError, OSError) as error:
        logger.warning("job %s: webhook not queued, the broker is unavailable: %s", job_id, error)
        Job.objects.filter(id=job_id).update(webhook_last_error=f"{WEBHOOK_NOT_QUEUED}{error}"[:300])
        return False
    return True


def webhooks_requeue_unsent() -> int:
    """Queue again the webhooks the broker refused when their jobs ended; stop at the first refusal."""
    unsent = Job.objects.filter(
        webhook_status=Job.WebhookStatus.PENDING,
        webhook_last_error__startswith=WEBHOOK_NOT_QUEUED,
        expired_at__isnull=True,
    ).values_list("id", "callback_url")[:500]
    queued = 0
    for job_id, callback_url in unsent:
        if not webhook_queue(job_id=job_id, callback_url=callback_url):
            break
        Job.objects.filter(id=job_id, webhook_last_error__startswith=WEBHOOK_NOT_QUEUED).update(
            webhook_last_error=""
        )
        queued += 1
    if queued:
        logger.info("queued %d webhook(s) the broker had refused", queued)
    return queued


def webhook_deliver(*, job_id) -> bool | None:
    """POST a finished job's status JSON to its callback URL once; None when there is nothing to send.

    True when the receiver answered 2xx, False for any other answer or none (the task retries).
    """
    job = Job.objects.filter(id=job_id).first()
    if job is None or job.webhook_status != Job.WebhookStatus.PENDING or not job.is_finished:
        return None
    if job.expired_at:
        Job.objects.filter(id=job_id).update(
            webhook_status=Job.WebhookStatus.GIVEN_UP,
            webhook_last_error="The job was deleted before delivery.",
        )
        return None
    body = json.dumps(selectors.job_status_payload(job=job)).encode()
    delivery = webhooks.deliver(
        job.callback_url,
        body,
        secret=settings.THUMBNAILER_WEBHOOK_SECRET,
        allow_private=settings.THUMBNAILER_WEBHOOK_ALLOW_PRIVATE,
        timeout=settings.THUMBNAILER_WEBHOOK_TIMEOUT_SECONDS,
    )
    outcome = f"HTTP {delivery.status}" if delivery.status is not None else delivery.error
    Job.objects.filter(id=job_id).update(
        webhook_attempts=F("webhook_attempts") + 1,
        webhook_last_error="" if delivery.delivered else outcome[:300],
        webhook_status=Job.WebhookStatus.DELIVERED if delivery.delivered else Job.WebhookStatus.PENDING,
    )
    return delivery.delivered


def webhook_give_up(*, job_id) -> None:
    """Record that the receiver never took the webhook; the job's own result is untouched."""
    Job.objects.filter(id=job_id, webhook_status=Job.WebhookStatus.PENDING).update(
        webhook_status=Job.WebhookStatus.GIVEN_UP
    )
