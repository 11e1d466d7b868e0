from django.urls import path

from . import health, views

app_name = "thumbnailer"

urlpatterns = [
    path("", views.upload_page, name="upload"),
    path("jobs/", views.job_results, name="job_results"),
    path("jobs/zip/", views.download_all, name="download_all"),
    path("api/jobs/", views.api_jobs, name="api_jobs"),
    # str, not uuid: a malformed id must get the JSON 404, not Django's HTML one.
    path("task/<str:task_id>/", views.task_status, name="task_status"),
    path("task/<str:task_id>/card/", views.job_card, name="job_card"),
    path("stats/", views.stats_page, name="stats"),
    path("api/stats/", views.api_stats, name="api_stats"),
    path("healthz/", health.health, name="health"),
]
