from django.contrib import admin

from .models import Job, Summary


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "client_name",
        "status",
        "original_format",
        "created_at",
        "processing_ms",
        "webhook_status",
    ]
    list_filter = ["status", "original_format", "webhook_status"]
    search_fields = ["id", "client_name"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Job._meta.fields]


@admin.register(Summary)
class SummaryAdmin(admin.ModelAdmin):
    list_display = [
        "period_end",
        "jobs_created",
        "jobs_succeeded",
        "jobs_failed",
        "backlog",
        "processing_p50_ms",
        "processing_p95_ms",
    ]
    date_hierarchy = "period_end"
    readonly_fields = [field.name for field in Summary._meta.fields]
