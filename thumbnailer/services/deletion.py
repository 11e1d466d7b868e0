"""Deleting a job at its uploader's request: who may, and what goes."""

import hashlib
import hmac

from django.utils import timezone

from .. import storage_io
from ..job_events import job_ended_announce
from ..models import Job


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def job_may_delete(*, job: Job, session_key: str | None, bearer_token: str | None) -> bool:
    """The uploader may delete a job: the browser session that sent it, or the holder of its token."""
    if bearer_token and job.delete_token_sha256:
        return hmac.compare_digest(token_hash(bearer_token), job.delete_token_sha256)
    return bool(session_key) and hmac.compare_digest(session_key, job.owner_key or "")


def job_delete(*, job_id) -> None:
    """Delete a job's files now; its row stays, marked deleted (its status answers 410 from then on).

    The row is marked first, so a worker still making thumbnails for it neither records them
    nor leaves them behind (job_process's SUCCESS update checks the mark, and if it is set the
    worker removes what it wrote).
    """
    now = timezone.now()
    deleted = Job.objects.filter(id=job_id, expired_at__isnull=True).update(
        deleted_at=now, expired_at=now, lease_expires_at=None
    )
    if deleted:
        job_ended_announce(job_id=job_id)
    storage_io.delete_folder(storage_io.job_folder(job_id))
