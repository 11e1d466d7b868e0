"""Jobs and the summaries beat writes. The Job row is the source of truth for a job."""

import uuid

from django.db import models

from .imaging.options import ThumbnailOptions


class Job(models.Model):
    """One uploaded image and what the worker made of it."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Waiting in the queue"
        STARTED = "STARTED", "Making thumbnails"
        RETRY = "RETRY", "Waiting to try again"
        SUCCESS = "SUCCESS", "Done"
        FAILURE = "FAILURE", "Failed"

    FINISHED = (Status.SUCCESS, Status.FAILURE)

    class WebhookStatus(models.TextChoices):
        NONE = "", "No webhook"
        PENDING = "pending", "Not delivered yet"
        DELIVERED = "delivered", "Delivered"
        GIVEN_UP = "given_up", "Given up"

    # The job id is also the Celery task id and the storage folder name.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The visitor's session key, so the page can list "your recent jobs" and delete them.
    owner_key = models.CharField(max_length=64, blank=True, db_index=True)
    # An API client deletes its job with the token from its 202; only the token's hash is kept.
    delete_token_sha256 = models.CharField(max_length=64, blank=True)
    client_name = models.CharField(max_length=255, help_text="The file name as the client sent it.")
    stem = models.CharField(max_length=100, help_text="Safe stem used for every output name.")
    sizes = models.JSONField(default=list, help_text='Requested boxes, e.g. ["128x128"].')
    # What kind of thumbnails: see imaging.ThumbnailOptions (the defaults are the tutorial's).
    mode = models.CharField(max_length=5, default="fit")
    focus = models.JSONField(null=True, blank=True, help_text="[x, y] fractions the fill crop keeps in view.")
    output_format = models.CharField(max_length=4, default="auto")
    quality = models.PositiveSmallIntegerField(null=True, blank=True)

    original_path = models.CharField(max_length=300)
    original_format = models.CharField(max_length=10)
    original_width = models.PositiveIntegerField()
    original_height = models.PositiveIntegerField()
    original_bytes = models.PositiveBigIntegerField()
    # What makes two uploads the same job: the bytes (hashed while they streamed in) and the
    # options. A new job with both equal to a finished one's is answered from its result.
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the original, hex.")
    options_key = models.CharField(
        max_length=300, blank=True, help_text="The options the thumbnails were made with, canonical."
    )
    repeat_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="repeats",
        help_text="The earlier job whose result this one copied, without a worker.",
    )

    # Where to POST the status JSON when the job ends (a public http(s) URL, checked at upload).
    callback_url = models.URLField(max_length=2000, blank=True)
    webhook_status = models.CharField(max_length=10, choices=WebhookStatus.choices, blank=True, default="")
    webhook_attempts = models.PositiveSmallIntegerField(default=0)
    webhook_last_error = models.CharField(max_length=300, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Each claim by a worker counts; a job whose worker keeps dying fails instead of looping.
    deliveries = models.PositiveSmallIntegerField(default=0)
    # Until this moment a claimed job belongs to the worker that claimed it.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=300, blank=True)

    thumbnails = models.JSONField(
        default=list, help_text="One entry per box: size, path, width, height, format, bytes."
    )
    archive_path = models.CharField(max_length=300, blank=True)
    archive_bytes = models.PositiveBigIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    processing_ms = models.PositiveIntegerField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Deleted by its uploader (expired_at is set too: a deleted job is gone like an expired one).
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["sha256", "options_key"], name="job_repeat_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.client_name} ({self.status})"

    @property
    def thumbnail_options(self) -> ThumbnailOptions:
        return ThumbnailOptions(
            mode=self.mode,
            focus=tuple(self.focus) if self.focus else None,
            format=self.output_format,
            quality=self.quality,
        )

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def bytes_out(self) -> int:
        return sum(thumb["bytes"] for thumb in self.thumbnails) + (self.archive_bytes or 0)


class Summary(models.Model):
    """Activity over one interval, written by the beat task `summarize`."""

    period_start = models.DateTimeField()
    period_end = models.DateTimeField(db_index=True)
    jobs_created = models.PositiveIntegerField()
    jobs_succeeded = models.PositiveIntegerField()
    jobs_failed = models.PositiveIntegerField()
    backlog = models.PositiveIntegerField(help_text="Jobs not finished at the end of the period.")
    processing_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    processing_p95_ms = models.PositiveIntegerField(null=True, blank=True)
    queue_wait_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    queue_wait_p95_ms = models.PositiveIntegerField(null=True, blank=True)
    bytes_in = models.PositiveBigIntegerField()
    bytes_out = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["-period_end"]
        verbose_name_plural = "summaries"

    def __str__(self) -> str:
        return f"{self.period_start:%Y-%m-%d %H:%M:%S} – {self.period_end:%H:%M:%S}"
