"""Business logic for jobs: the Django glue around the pure image pipeline.

Writes live here; reads for pages and JSON live in selectors.py. Views and tasks stay thin and
call one function each, as `services.<name>`:

- uploads:   upload_accept (the views' one call), upload_inspect, job_submit, job_create, options_key
- repeats:   job_copy_result, the same bytes and options answered without a worker
- lifecycle: job_process (the task's one call), the claim and its lease, job_fail, retries,
             jobs_requeue_stale and jobs_purge_expired (beat)
- deletion:  job_may_delete, job_delete
- callbacks: webhook_queue, webhook_deliver, webhook_give_up
- errors:    what they raise
"""

from .callbacks import (
    DELIVER_WEBHOOK,
    WEBHOOK_NOT_QUEUED,
    webhook_deliver,
    webhook_give_up,
    webhook_queue,
    webhooks_requeue_unsent,
)
from .deletion import job_delete, job_may_delete, token_hash
from .errors import JobBusy, LeaseLost, QueueUnavailable, UploadRefused
from .lifecycle import (
    MAKE_THUMBNAILS,
    Claim,
    job_claim,
    job_discard,
    job_fail,
    job_holds_lease,
    job_mark_retry,
    job_process,
    job_publish,
    job_send,
    jobs_purge_expired,
    jobs_requeue_stale,
    lease_seconds,
    package_store,
)
from .repeats import job_copy_result
from .uploads import (
    QUEUE_UNAVAILABLE_MESSAGE,
    STORAGE_UNAVAILABLE_MESSAGE,
    job_create,
    job_submit,
    options_key,
    upload_accept,
    upload_inspect,
)

__all__ = [
    "DELIVER_WEBHOOK",
    "MAKE_THUMBNAILS",
    "QUEUE_UNAVAILABLE_MESSAGE",
    "STORAGE_UNAVAILABLE_MESSAGE",
    "WEBHOOK_NOT_QUEUED",
    "Claim",
    "JobBusy",
    "LeaseLost",
    "QueueUnavailable",
    "UploadRefused",
    "job_claim",
    "job_copy_result",
    "job_create",
    "job_delete",
    "job_discard",
    "job_fail",
    "job_holds_lease",
    "job_mark_retry",
    "job_may_delete",
    "job_process",
    "job_publish",
    "job_send",
    "job_submit",
    "jobs_purge_expired",
    "jobs_requeue_stale",
    "lease_seconds",
    "options_key",
    "package_store",
    "token_hash",
    "upload_accept",
    "upload_inspect",
    "webhook_deliver",
    "webhook_give_up",
    "webhook_queue",
    "webhooks_requeue_unsent",
]
