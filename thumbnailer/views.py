"""Views: validate with a form, call a service, answer. No image is decoded here."""
import functools
import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import imaging, selectors, services
from .forms import ApiJobForm, UploadForm
from .models import Job

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying when the queue is down.
RETRY_AFTER_SECONDS = 30
# Multipart framing and the small fields around the file(s).
MULTIPART_OVERHEAD_BYTES = 64 * 1024

# The only content types media is ever served with: stored names get their extension from
# the file's content, and anything else is served as a download.
MEDIA_CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "ico": "image/vnd.microsoft.icon",
    "avif": "image/avif",
    "heic": "image/heic",
    "zip": "application/zip",
}


def json_error(code: str, message: str, *, status: int, headers: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status, headers=headers)


def json_methods(*methods: str):
    """require_http_methods for the JSON views: their 405 is a JSON error like every other answer."""

    def decorator(view):
        @functools.wraps(view)
        def checked(request, *args, **kwargs):
            if request.method not in methods:
                response = json_error(
                    "method_not_allowed",
                    f"This address only answers {' or '.join(methods)}.",
                    status=405,
                )
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return checked

    return decorator


def too_large_message() -> str:
    return f"The file is larger than the {filesizeformat(settings.THUMBNAILER_MAX_UPLOAD_BYTES)} limit."


def request_too_large(request, *, files: int) -> bool:
    """True when the declared body is bigger than `files` files at the cap could make it."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return declared > files * settings.THUMBNAILER_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


def owner_key(request) -> str:
    """The visitor's session key, created on first upload so the page can list their jobs."""
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


def accept_upload(request, upload, *, boxes) -> Job | services.Rejection:
    """Inspect and submit one uploaded file; a Rejection says why it was not taken."""
    try:
        header = services.upload_inspect(upload=upload)
        return services.job_submit(
            upload=upload, header=header, boxes=boxes, owner_key=owner_key(request)
        )
    except imaging.ImageRejected as rejected:
        return services.Rejection(rejected.code, rejected.message)
    except services.QueueUnavailable:
        return services.Rejection(
            "queue_unavailable",
            "The thumbnail queue is not available right now; please try again in a minute.",
            http_status=503,
        )


@require_http_methods(["GET", "POST"])
def upload_page(request):
    """GET: the upload form and the visitor's recent jobs. POST: accept each file."""
    if request.method == "GET":
        return render_upload_page(request, UploadForm())

    if request_too_large(request, files=settings.THUMBNAILER_MAX_FILES_PER_POST):
        messages.error(request, "That upload is too large altogether; send fewer or smaller files.")
        return render_upload_page(request, UploadForm(), status=413)

    form = UploadForm(request.POST, request.FILES)
    oversized = list(getattr(request, "oversized_uploads", []))
    for name in oversized:
        messages.error(request, f"{name or 'A file'}: {too_large_message()}")
    if not form.is_valid():
        if oversized and "image_file" in form.errors and len(form.errors) == 1:
            return render_upload_page(request, UploadForm(), status=413)
        return render_upload_page(request, form, status=400)
    uploads = form.cleaned_data["image_file"]
    if len(uploads) > settings.THUMBNAILER_MAX_FILES_PER_POST:
        messages.error(
            request, f"Send at most {settings.THUMBNAILER_MAX_FILES_PER_POST} files at a time."
        )
        return render_upload_page(request, UploadForm(), status=400)

    accepted: list[Job] = []
    statuses = [413] * len(oversized)
    for upload in uploads:
        outcome = accept_upload(request, upload, boxes=form.cleaned_data["sizes"])
        if isinstance(outcome, Job):
            accepted.append(outcome)
        else:
            statuses.append(outcome.http_status)
            messages.error(request, f"{upload.name}: {outcome.message}")

    if not accepted:
        status = max(statuses, default=400)
        response = render_upload_page(request, UploadForm(), status=status)
        if status == 503:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    ids = ",".join(str(job.id) for job in accepted)
    return HttpResponseRedirect(f"{reverse('thumbnailer:job_results')}?ids={ids}", status=303)


def render_upload_page(request, form, *, status: int = 200):
    context = {
        "form": form,
        "jobs": selectors.jobs_recent(owner_key=request.session.session_key or ""),
        "max_upload_mib": settings.THUMBNAILER_MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    return render(request, "thumbnailer/upload.html", context, status=status)


@require_GET
def job_results(request):
    """The jobs of one upload; refreshes itself without JavaScript until all have finished."""
    jobs = []
    for raw_id in request.GET.get("ids", "").split(",")[: settings.THUMBNAILER_MAX_FILES_PER_POST]:
        job = selectors.job_get(job_id=raw_id) if is_uuid(raw_id) else None
        if job is not None:
            jobs.append(job)
    if not jobs:
        raise Http404("No such jobs.")
    context = {"jobs": jobs, "all_finished": all(job.is_finished for job in jobs)}
    return render(request, "thumbnailer/results.html", context)


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@csrf_exempt  # a script's API: no cookies, no session, so no cross-site request to forge
@json_methods("POST")
def api_jobs(request):
    """Accept one image for scripts: 202 with the status URL, or a JSON error."""
    if request_too_large(request, files=1):
        return json_error("file_too_large", too_large_message(), status=413)
    form = ApiJobForm(request.POST, request.FILES)
    if getattr(request, "oversized_uploads", []):
        return json_error("file_too_large", too_large_message(), status=413)
    if not form.is_valid():
        field, errors = next(iter(form.errors.as_data().items()))
        code = "missing_file" if field == "image_file" else "invalid_size"
        return json_error(code, errors[0].messages[0], status=400)

    upload = form.cleaned_data["image_file"]
    try:
        header = services.upload_inspect(upload=upload)
        job = services.job_submit(
            upload=upload, header=header, boxes=form.cleaned_data["sizes"], owner_key=""
        )
    except imaging.ImageRejected as rejected:
        return json_error(rejected.code, rejected.message, status=400)
    except services.QueueUnavailable:
        return json_error(
            "queue_unavailable",
            "The thumbnail queue is not available right now; nothing was stored. Try again later.",
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    status_url = reverse("thumbnailer:task_status", args=[job.id])
    body = {"task_id": str(job.id), "task_status": job.status, "status_url": status_url}
    return JsonResponse(body, status=202, headers={"Location": status_url})


@json_methods("GET")
def task_status(request, task_id):
    """The status JSON for one job (the tutorial's polling contract, extended)."""
    job = selectors.job_get(job_id=task_id) if is_uuid(task_id) else None
    if job is None:
        return json_error("unknown_job", "There is no job with this id.", status=404)
    if job.expired_at:
        return json_error(
            "job_expired", "This job's files were deleted after the retention period.", status=410
        )
    return JsonResponse(selectors.job_status_payload(job=job))


@require_GET
def stats_page(request):
    summaries = selectors.summaries_recent()
    chart = [selectors.summary_payload(summary) for summary in summaries]
    return render(
        request,
        "thumbnailer/stats.html",
        {"summaries": list(reversed(summaries))[:20], "chart_data": chart},
    )


@json_methods("GET")
def api_stats(request):
    summaries = selectors.summaries_recent()
    return JsonResponse({"summaries": [selectors.summary_payload(summary) for summary in summaries]})


@require_GET
def media(request, path: str):
    """Serve a stored file through the storage API, as an image or a download, never as HTML."""
    if not settings.THUMBNAILER_SERVE_MEDIA or ".." in path.split("/") or not path.startswith("jobs/"):
        raise Http404("No such file.")
    if not default_storage.exists(path):
        raise Http404("No such file.")
    extension = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    content_type = MEDIA_CONTENT_TYPES.get(extension, "application/octet-stream")
    download = content_type in {"application/zip", "application/octet-stream"}
    response = FileResponse(
        default_storage.open(path, "rb"),
        content_type=content_type,
        as_attachment=download,
        filename=path.rsplit("/", 1)[-1],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "public, max-age=86400, immutable"
    return response


def wants_json(request) -> bool:
    return request.path.startswith(("/api/", "/task/"))


def error_404(request, exception=None):
    if wants_json(request):
        return json_error("not_found", "There is nothing at this address.", status=404)
    return render(request, "404.html", status=404)


def error_400(request, exception=None):
    if wants_json(request):
        return json_error("bad_request", "The request could not be understood.", status=400)
    return render(request, "400.html", status=400)


def error_500(request):
    if wants_json(request):
        return json_error("internal_error", "Something went wrong on our side.", status=500)
    return render(request, "500.html", status=500)
