"""Views: validate with a form, call a service, answer. No image is decoded here."""

import functools
import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from . import job_events, selectors, services, storage_io, units, upload_handlers, zipstream
from .forms import ApiJobForm, UploadForm, first_error
from .imaging.identify import ACCEPTED_FORMATS_SENTENCE
from .models import Job

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying when the queue is down.
RETRY_AFTER_SECONDS = 30

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


# The one place where a refused upload becomes an HTTP status; any other refusal is a 400.
REFUSAL_STATUS = {"file_too_large": 413, "queue_unavailable": 503, "storage_unavailable": 503}


def refusal_status(code: str) -> int:
    return REFUSAL_STATUS.get(code, 400)


def refusal_headers(code: str) -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if refusal_status(code) == 503 else {}


def file_too_large() -> services.UploadRefused:
    limit = units.human_size(settings.THUMBNAILER_MAX_UPLOAD_BYTES)
    return services.UploadRefused("file_too_large", f"The file is larger than the {limit} limit.")


def body_too_large_response(request, response):
    """Answer a body refused from its Content-Length after reading it, so every client sees the answer."""
    if not upload_handlers.discard_body(request):
        response["Connection"] = "close"
    return response


def session_key_saved(request) -> str:
    """The visitor's session key, saving a new session first if they have none yet."""
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


@csrf_exempt  # only so the upload handlers go in before the CSRF check reads the body
@require_http_methods(["GET", "POST"])
def upload_page(request):
    """GET: the upload form and the visitor's recent jobs. POST: accept each file."""
    watch = upload_handlers.UploadWatch(request)
    return upload_page_checked(request, watch)


@csrf_protect
def upload_page_checked(request, watch: upload_handlers.UploadWatch):
    if request.method == "GET":
        return render_upload_page(request, UploadForm())
    # The page's script sends one file a request and asks for JSON; the plain form gets pages.
    answer_json = "application/json" in request.headers.get("Accept", "")
    if upload_handlers.declared_body_too_large(request, files=settings.THUMBNAILER_MAX_FILES_PER_POST):
        if answer_json:
            return body_too_large_response(request, refusal_json(file_too_large()))
        messages.error(request, "That upload is too large altogether; send fewer or smaller files.")
        return body_too_large_response(request, render_upload_page(request, UploadForm(), status=413))

    form = UploadForm(request.POST, request.FILES)
    refused = [(name or "A file", file_too_large()) for name in watch.oversized_names]
    if form.is_valid():
        uploads, boxes = form.cleaned_data["image_file"], form.cleaned_data["sizes"]
        options = form.cleaned_data["options"]
    elif refused and error_codes(form) == ["missing_file"]:
        uploads, boxes, options = [], [], None  # every file was too large: say so for each, below
    elif answer_json:
        return json_error(*first_error(form), status=400)
    else:
        return render_upload_page(request, form, status=400)

    accepted: list[Job] = []
    for upload in uploads:
        try:
            job = services.upload_accept(
                upload=upload,
                sha256=watch.sha256_of(upload),
                boxes=boxes,
                owner_key=session_key_saved(request),
                options=options,
            )
        except services.UploadRefused as refusal:
            refused.append((upload.name, refusal))
        else:
            accepted.append(job)
    if answer_json:
        return job_accepted_json(accepted[0]) if accepted else refusal_json(refused[0][1])
    for name, refusal in refused:
        messages.error(request, f"{name}: {refusal.message}")

    if not accepted:
        worst = max((refusal.code for _, refusal in refused), key=refusal_status)
        response = render_upload_page(request, UploadForm(), status=refusal_status(worst))
        for header, value in refusal_headers(worst).items():
            response[header] = value
        return response
    ids = ",".join(str(job.id) for job in accepted)
    return HttpResponseRedirect(f"{reverse('thumbnailer:job_results')}?ids={ids}", status=303)


def job_accepted_json(job: Job, *, now: Job | None = None, preference_applied: str = "") -> JsonResponse:
    """The 202 for an accepted upload: where to poll, where its card is, how to delete it.

    After a `Prefer: wait`, `now` is the job's row as it stands after the wait: the answer also
    carries its status as the status URL answers it, and is a 201 when the job has ended.
    """
    status_url = reverse("thumbnailer:task_status", args=[job.id])
    body = {
        "task_id": str(job.id),
        "task_status": job.status,
        "status_url": status_url,
        "card_url": reverse("thumbnailer:job_card", args=[job.id]),
        # A secret only this client gets: `Authorization: Bearer <token>` on DELETE status_url.
        "delete_token": job.delete_token,
    }
    if not preference_applied or now is None or now.deleted_at or now.expired_at:
        return JsonResponse(body, status=202, headers={"Location": status_url})
    body.update(selectors.job_status_payload(job=now))
    return JsonResponse(
        body,
        status=201 if now.status in Job.FINISHED else 202,
        headers={"Location": status_url, "Preference-Applied": preference_applied},
    )


def preferred_wait(header: str) -> float:
    """Seconds of a `Prefer: wait=N` header (RFC 7240), at most MAX_WAIT_SECONDS; 0 without one.

    A preference is a hint: one that is not a number of seconds is ignored, not refused.
    """
    for preference in header.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() == "wait":
            return wait_seconds(value.strip().strip('"')) or 0.0
    return 0.0


def job_waited(request, job: Job, *, wait: float) -> tuple[Job | None, str]:
    """The job's row once it has ended or `wait` seconds passed, and the preference applied.

    Like a status read's ?wait, it takes a wait slot, and answers at once ("" applied) when
    none is free or the server is single-threaded.
    """
    if job.status in Job.FINISHED:  # a repeat, answered from an earlier result
        return job, f"wait={wait:g}"
    with job_events.wait_slot(wanted=True, environ=request.META) as may_wait:
        if not may_wait:
            return job, ""
        return job_events.job_wait(job_id=job.id, timeout=wait), f"wait={wait:g}"


def error_codes(form) -> list[str]:
    return [error.code for errors in form.errors.as_data().values() for error in errors]


# What browsers call the types we take; a file of any of them is sent, the server decides.
BROWSER_IMAGE_TYPES = (
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/x-icon",
    "image/vnd.microsoft.icon", "image/avif", "image/heic", "image/heif", "image/heic-sequence",
)  # fmt: skip
# Types browsers name that we refuse, with the name the server's own refusal uses.
BROWSER_REFUSED_TYPES = {
    "application/pdf": "PDF",
    "application/postscript": "PostScript/EPS",
    "image/svg+xml": "SVG",
    "image/vnd.adobe.photoshop": "Photoshop (PSD)",
    "image/jp2": "JPEG 2000",
    "image/jxl": "JPEG XL",
    "image/x-tga": "TGA",
    "image/x-icns": "Apple icon (ICNS)",
}


def upload_rules() -> dict:
    """The limits and refusals the page's script applies before sending, in the server's own words."""
    return {
        "maxBytes": settings.THUMBNAILER_MAX_UPLOAD_BYTES,
        "tooLarge": file_too_large().message,
        "acceptedTypes": list(BROWSER_IMAGE_TYPES),
        "refusedTypes": {
            mime: f"{name} files are not supported. {ACCEPTED_FORMATS_SENTENCE}"
            for mime, name in BROWSER_REFUSED_TYPES.items()
        },
        "notAnImage": f"The file is not an image we can read. {ACCEPTED_FORMATS_SENTENCE}",
    }


def render_upload_page(request, form, *, status: int = 200):
    context = {
        "form": form,
        "jobs": selectors.jobs_recent(owner_key=request.session.session_key or ""),
        "max_upload_bytes": settings.THUMBNAILER_MAX_UPLOAD_BYTES,
        "upload_rules": upload_rules(),
    }
    return render(request, "thumbnailer/upload.html", context, status=status)


@require_GET
def download_all(request):
    """One zip of the files of several jobs (an upload of several images), streamed as it is made."""
    ids = [raw for raw in request.GET.get("ids", "").split(",") if is_uuid(raw)]
    jobs = selectors.jobs_finished(job_ids=ids[: settings.THUMBNAILER_MAX_FILES_PER_POST])
    if not jobs:
        raise Http404("None of these jobs has finished.")
    members = []
    folders: set[str] = set()
    for job in jobs:
        folder, number = job.stem, 1
        while folder in folders:  # two uploads called photo.jpg: photo/ and photo_2/
            number += 1
            folder = f"{job.stem}_{number}"
        folders.add(folder)
        for path in [job.original_path, *(thumbnail["path"] for thumbnail in job.thumbnails)]:
            name = f"{folder}/{path.rsplit('/', 1)[-1]}"
            members.append((name, functools.partial(default_storage.open, path, "rb")))
    response = StreamingHttpResponse(zipstream.stream_zip(members), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="thumbnails.zip"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


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
    context = {
        "jobs": jobs,
        "all_finished": all(job.is_finished for job in jobs),
        "ids": ",".join(str(job.id) for job in jobs),
    }
    return render(request, "thumbnailer/results.html", context)


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def refusal_json(refusal: services.UploadRefused) -> JsonResponse:
    return json_error(
        refusal.code,
        refusal.message,
        status=refusal_status(refusal.code),
        headers=refusal_headers(refusal.code),
    )


@csrf_exempt  # a script's API: no cookies, no session, so no cross-site request to forge
@json_methods("POST")
def api_jobs(request):
    """Accept one image for scripts: 202 with the status URL, or a JSON error.

    With `Prefer: wait=N` the answer waits until the job ends or N seconds pass, so a script
    gets its thumbnails in one request: 201 with the status JSON once ended, else the 202.
    """
    watch = upload_handlers.UploadWatch(request)
    if upload_handlers.declared_body_too_large(request, files=1):
        return body_too_large_response(request, refusal_json(file_too_large()))
    form = ApiJobForm(request.POST, request.FILES)
    if watch.oversized_names:
        return refusal_json(file_too_large())
    if not form.is_valid():
        code, message = first_error(form)
        return json_error(code, message, status=400)
    try:
        upload = form.cleaned_data["image_file"]
        job = services.upload_accept(
            upload=upload,
            sha256=watch.sha256_of(upload),
            boxes=form.cleaned_data["sizes"],
            owner_key="",
            callback_url=form.cleaned_data["callback_url"],
            options=form.cleaned_data["options"],
        )
    except services.UploadRefused as refusal:
        return refusal_json(refusal)

    wait = preferred_wait(request.headers.get("Prefer", ""))
    if not wait:
        return job_accepted_json(job)
    now, applied = job_waited(request, job, wait=wait)
    return job_accepted_json(job, now=now, preference_applied=applied)


UNKNOWN_JOB = ("unknown_job", "There is no job with this id.")


@csrf_exempt  # API clients delete with a bearer token, no cookies; browser deletes are checked below
@json_methods("GET", "DELETE")
def task_status(request, task_id):
    """GET: the status JSON for one job (the tutorial's polling contract, extended). DELETE: delete it.

    GET ?wait=N holds the answer until the job ends or N seconds pass (see job_events).
    """
    if request.method == "DELETE":
        return job_delete(request, task_id)
    if not is_uuid(task_id):
        return json_error(*UNKNOWN_JOB, status=404)
    wait = wait_seconds(request.GET.get("wait", ""))
    if wait is None:
        return json_error(
            "invalid_wait",
            f"wait must be a number of seconds from 0 to {job_events.MAX_WAIT_SECONDS:g}.",
            status=400,
        )
    with job_events.wait_slot(wanted=wait > 0, environ=request.META) as may_wait:
        if may_wait:
            job = job_events.job_wait(job_id=task_id, timeout=wait)
        else:
            job = selectors.job_get(job_id=task_id)
    if job is None:
        return json_error(*UNKNOWN_JOB, status=404)
    if job.deleted_at:
        return json_error("job_deleted", "This job was deleted by its uploader.", status=410)
    if job.expired_at:
        return json_error(
            "job_expired", "This job's files were deleted after the retention period.", status=410
        )
    return JsonResponse(selectors.job_status_payload(job=job))


def wait_seconds(text: str) -> float | None:
    """?wait= of a status request: seconds to hold the answer until the job ends (0 when absent).

    None when it is not a number of seconds; more than MAX_WAIT_SECONDS waits that long.
    """
    if not text:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        return None
    if not 0 <= seconds < float("inf"):  # also refuses nan
        return None
    return min(seconds, job_events.MAX_WAIT_SECONDS)


def job_delete(request, task_id: str):
    """204 for the uploader; 404 for anyone else, so a job's existence is never revealed."""
    bearer_token = bearer_token_of(request)
    if bearer_token is None:
        # A browser deletes with its session cookie, so the CSRF check applies: Django's own
        # check, run here so that a refusal is answered in JSON like every error of this address,
        # and before the job is looked up, so the answer says nothing about whether it exists.
        refused = CsrfViewMiddleware(lambda request: None).process_view(request, None, (), {})
        if refused is not None:
            return json_error("csrf_failed", "The request did not carry the page's CSRF token.", status=403)
    job = selectors.job_get(job_id=task_id) if is_uuid(task_id) else None
    if job is None or not services.job_may_delete(
        job=job, session_key=request.session.session_key, bearer_token=bearer_token
    ):
        return json_error(*UNKNOWN_JOB, status=404)
    services.job_delete(job_id=job.id)
    return HttpResponse(status=204)


@require_GET
def job_card(request, task_id):
    """The job's card as an HTML fragment: the one rendering of a card, swapped in by the page's script."""
    job = selectors.job_get(job_id=task_id) if is_uuid(task_id) else None
    if job is None or job.expired_at:
        raise Http404("No such job.")
    deletable = bool(request.session.session_key) and job.owner_key == request.session.session_key
    return render(request, "thumbnailer/_job.html", {"job": job, "deletable": deletable})


def bearer_token_of(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


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
    """Serve a stored file through the storage API, as an image or a download, never as HTML.

    From an object store, answer 302 to a link that expires, carrying the same content type
    and disposition: the bytes then never pass through this process.
    """
    if not settings.THUMBNAILER_SERVE_MEDIA or ".." in path.split("/") or not path.startswith("jobs/"):
        raise Http404("No such file.")
    if not default_storage.exists(path):
        raise Http404("No such file.")
    extension = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    content_type = MEDIA_CONTENT_TYPES.get(extension, "application/octet-stream")
    download = content_type in {"application/zip", "application/octet-stream"}
    if storage_io.local_path(path) is None:
        presigned = default_storage.url(
            path,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition_header(download, path.rsplit("/", 1)[-1]),
            },
        )
        response = HttpResponseRedirect(presigned)
        # A cached redirect is followed at most half the link's life after it was signed.
        response["Cache-Control"] = f"private, max-age={settings.AWS_QUERYSTRING_EXPIRE // 2}"
        return response
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
