"""The HTTP contract: upload page, JSON API, status JSON, media, stats, as the README documents it.

These tests talk to the session's real Redis (uploads are really queued) but run no
worker, so accepted jobs stay PENDING here; test_tasks.py covers the worker side.
"""

import hashlib
import json
import re
import uuid

import pytest
from django.core.files.storage import default_storage

from thumbnailer.models import Job, Summary

from .support import images

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture(autouse=True)
def _broker(redis_server):
    redis_server.client().flushall()
    return redis_server


def queued_task_ids(redis_server) -> list[str]:
    client = redis_server.client()
    return [json.loads(raw)["headers"]["id"] for raw in client.lrange("celery", 0, -1)]


def stored_files() -> list[str]:
    if not default_storage.exists("jobs"):
        return []
    folders, _ = default_storage.listdir("jobs")
    return sorted(
        f"jobs/{folder}/{name}" for folder in folders for name in default_storage.listdir(f"jobs/{folder}")[1]
    )


def test_upload_page_has_the_form(client):
    """GET / shows a CSRF-protected multi-file form styled through widget-tweaks."""
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="image_file"' in html
    assert "multiple" in html
    assert 'class="file-input"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'type="submit"' in html


def test_api_accepts_an_image_and_queues_it(client, _broker):
    """POST /api/jobs/ stores the original, records a PENDING job and queues its id."""
    data = images.jpeg_bytes()
    response = client.post("/api/jobs/", {"image_file": images.upload("My Photo.jpeg", data)})

    assert response.status_code == 202
    body = response.json()
    job = Job.objects.get()
    assert body == {
        "task_id": str(job.id),
        "task_status": "PENDING",
        "status_url": f"/task/{job.id}/",
        "card_url": f"/task/{job.id}/card/",
        "delete_token": body["delete_token"],
    }
    assert len(body["delete_token"]) >= 40
    assert body["delete_token"] not in json.dumps(list(Job.objects.values()), default=str)
    assert response["Location"] == f"/task/{job.id}/"
    assert hashlib.sha256(data).hexdigest() == job.sha256  # hashed while it streamed in
    assert job.original_path == f"jobs/{job.id}/My_Photo.jpg"
    assert (job.original_format, job.original_width, job.original_height) == ("JPEG", 640, 480)
    assert job.sizes == ["128x128"]
    with default_storage.open(job.original_path) as stored:
        assert stored.read() == data
    assert queued_task_ids(_broker) == [str(job.id)]


def test_status_of_a_pending_job(client):
    """GET /task/<id>/ answers the tutorial's keys plus progress while waiting."""
    client.post("/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes())})
    job = Job.objects.get()

    response = client.get(f"/task/{job.id}/")

    assert response.status_code == 200
    assert response.json() == {
        "task_id": str(job.id),
        "task_status": "PENDING",
        "progress": {"current": 0, "total": 1, "percent": 0},
    }


def test_status_of_a_failed_job_carries_the_error(client):
    client.post("/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes())})
    job = Job.objects.get()
    Job.objects.filter(id=job.id).update(
        status=Job.Status.FAILURE, error_code="corrupt_image", error_message="The image is damaged."
    )

    assert client.get(f"/task/{job.id}/").json() == {
        "task_id": str(job.id),
        "task_status": "FAILURE",
        "error": {"code": "corrupt_image", "message": "The image is damaged."},
    }


@pytest.mark.parametrize("wait", ["soon", "-1", "nan"])
def test_a_wait_that_is_not_seconds_is_a_json_400(client, wait):
    response = client.get(f"/task/{uuid.uuid4()}/?wait={wait}")
    assert (response.status_code, response.json()) == (
        400,
        {"error": {"code": "invalid_wait", "message": "wait must be a number of seconds from 0 to 25."}},
    )


def test_a_single_threaded_server_answers_a_wait_at_once(client, monkeypatch):
    """Django's test client, like gunicorn's sync worker, is not multithreaded: a wait would stall it."""
    from thumbnailer import job_events

    client.post("/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes())})
    job = Job.objects.get()
    monkeypatch.setattr(job_events, "job_wait", lambda **kwargs: pytest.fail("the status read waited"))

    assert client.get(f"/task/{job.id}/?wait=25").json()["task_status"] == "PENDING"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=10", 10.0),
        ("respond-async, wait=5", 5.0),
        ("Wait = 2.5", 2.5),
        ('wait="7"', 7.0),
        ("wait=3; foo=bar", 3.0),
        ("wait=100", 25.0),
        ("wait=soon", 0.0),
        ("wait=-1", 0.0),
        ("return=minimal", 0.0),
        ("", 0.0),
    ],
)
def test_prefer_wait_is_read_as_rfc_7240_writes_it_and_ignored_when_unreadable(header, seconds):
    from thumbnailer.views import preferred_wait

    assert preferred_wait(header) == seconds


def test_an_upload_preferring_to_wait_for_a_repeat_gets_its_results_in_a_201(client):
    """A repeat has ended when it is accepted: with `Prefer: wait` the answer is its status, whole."""
    from thumbnailer import services

    data = images.jpeg_bytes(color=(20, 90, 200))
    first = client.post("/api/jobs/", {"image_file": images.upload("first.jpg", data)}).json()
    services.job_process(job_id=first["task_id"])

    response = client.post(
        "/api/jobs/", {"image_file": images.upload("again.jpg", data)}, headers={"Prefer": "wait=5"}
    )

    assert (response.status_code, response["Preference-Applied"]) == (201, "wait=5")
    body = response.json()
    job = Job.objects.exclude(id=first["task_id"]).get()
    assert response["Location"] == body["status_url"] == f"/task/{job.id}/"
    assert (body["task_id"], body["task_status"]) == (str(job.id), "SUCCESS")
    assert len(body["delete_token"]) >= 40
    # The status part is what the status URL answers, to the key.
    status = client.get(body["status_url"]).json()
    assert {key: body[key] for key in status} == status
    assert body["results"]["thumbnails"][0]["url"].endswith(f"/jobs/{job.id}/again_128x128.jpg")


def test_a_single_threaded_server_does_not_hold_an_upload_that_prefers_to_wait(client, monkeypatch):
    """The preference is not applied there (no Preference-Applied): the usual 202, at once."""
    from thumbnailer import job_events

    monkeypatch.setattr(job_events, "job_wait", lambda **kwargs: pytest.fail("the upload waited"))

    response = client.post(
        "/api/jobs/",
        {"image_file": images.upload("a.jpg", images.jpeg_bytes())},
        headers={"Prefer": "wait=25"},
    )

    assert response.status_code == 202
    assert "Preference-Applied" not in response
    assert set(response.json()) == {"task_id", "task_status", "status_url", "card_url", "delete_token"}


@pytest.mark.django_db(transaction=True)
def test_a_wait_for_an_upload_that_runs_out_is_a_202_with_the_status_so_far(client, rf, parked_jobs):
    """No worker reads the job's queue: after the wait, the answer says where it stands and where to look."""
    from thumbnailer import views

    client.post("/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes())})
    job = Job.objects.get()
    request = rf.post("/api/jobs/", **{"wsgi.multithread": True})

    job.delete_token = "the token of the upload's answer"
    now, applied = views.job_waited(request, job, wait=0.3)
    response = views.job_accepted_json(job, now=now, preference_applied=applied)

    assert (response.status_code, response["Preference-Applied"]) == (202, "wait=0.3")
    body = json.loads(response.content)
    assert (body["task_status"], body["progress"]["percent"], body["status_url"], body["delete_token"]) == (
        "PENDING",
        0,
        f"/task/{job.id}/",
        "the token of the upload's answer",
    )


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid", "%2E%2E"])
def test_unknown_job_is_a_json_404(client, task_id):
    response = client.get(f"/task/{task_id}/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "unknown_job", "message": "There is no job with this id."}}


def test_expired_job_is_a_json_410(client):
    client.post("/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes())})
    job = Job.objects.get()
    Job.objects.filter(id=job.id).update(expired_at=job.created_at)

    response = client.get(f"/task/{job.id}/")

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "job_expired"


BAD_API_UPLOADS = [
    # (description, post data builder, status, error code)
    ("empty file", lambda: {"image_file": images.upload("empty.jpg", b"")}, 400, "empty_file"),
    (
        "random bytes",
        lambda: {"image_file": images.upload("noise.jpg", bytes(range(256)) * 8)},
        400,
        "not_an_image",
    ),
    (
        "HTML named .png",
        lambda: {
            "image_file": images.upload("page.png", b"<html><script>alert(1)</script></html>", "image/png")
        },
        400,
        "not_an_image",
    ),
    (
        "PDF",
        lambda: {"image_file": images.upload("doc.jpg", b"%PDF-1.4\n" + b"0" * 200)},
        400,
        "unsupported_format",
    ),
    (
        "huge canvas",
        lambda: {"image_file": images.upload("bomb.png", images.png_declaring(20000, 20000), "image/png")},
        400,
        "too_many_pixels",
    ),
    ("missing field", lambda: {"other": "x"}, 400, "missing_file"),
    (
        "bad sizes",
        lambda: {"image_file": images.upload("a.jpg", images.jpeg_bytes()), "sizes": "big"},
        400,
        "invalid_option",
    ),
    (
        "size too large",
        lambda: {"image_file": images.upload("a.jpg", images.jpeg_bytes()), "sizes": "128x99999"},
        400,
        "invalid_option",
    ),
]


@pytest.mark.parametrize(
    "post_data, status, code",
    [case[1:] for case in BAD_API_UPLOADS],
    ids=[case[0] for case in BAD_API_UPLOADS],
)
def test_bad_api_uploads_get_a_clear_answer_and_nothing_is_kept(client, _broker, post_data, status, code):
    response = client.post("/api/jobs/", post_data())

    assert response.status_code == status
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"].endswith(".")
    assert Job.objects.count() == 0
    assert stored_files() == []
    assert queued_task_ids(_broker) == []


@pytest.mark.parametrize("side", [150, 300], ids=["stopped while streaming", "refused from Content-Length"])
def test_oversized_api_upload_is_413_and_nothing_is_stored(client, settings, side):
    settings.THUMBNAILER_MAX_UPLOAD_BYTES = 30_000
    response = client.post(
        "/api/jobs/", {"image_file": images.upload("big.png", images.noisy_png_bytes((side, side)))}
    )

    assert response.status_code == 413
    assert response.json() == {
        "error": {"code": "file_too_large", "message": "The file is larger than the 29.3 KiB limit."}
    }
    assert Job.objects.count() == 0
    assert stored_files() == []


def test_form_upload_of_several_files_answers_each(client):
    """A good and a bad file in one post: the good one becomes a job, the bad one is named."""
    response = client.post(
        "/",
        {
            "image_file": [
                images.upload("good.jpg", images.jpeg_bytes()),
                images.upload("bad.png", b"not an image at all"),
            ],
            "sizes": ["64x64", "256x256"],
        },
        follow=True,
    )

    job = Job.objects.get()
    assert response.redirect_chain == [(f"/jobs/?ids={job.id}", 303)]
    assert job.sizes == ["64x64", "256x256"]
    html = response.content.decode()
    assert "bad.png: " in html
    assert f'data-status-url="/task/{job.id}/"' in html
    assert "Waiting in the queue" in html
    assert '<meta http-equiv="refresh" content="2">' in html


def test_form_upload_without_a_file_re_renders_the_form(client):
    response = client.post("/", {})
    assert response.status_code == 400
    assert "Choose at least one image to upload." in response.content.decode()


def test_form_upload_of_only_bad_files_is_400(client):
    response = client.post("/", {"image_file": [images.upload("x.gif", b"GIF89a-but-not-really")]})
    assert response.status_code == 400
    assert "x.gif: " in response.content.decode()
    assert Job.objects.count() == 0


def test_oversized_file_in_a_form_post_is_413(client, settings):
    settings.THUMBNAILER_MAX_UPLOAD_BYTES = 100_000
    response = client.post("/", {"image_file": [images.upload("big.png", images.noisy_png_bytes())]})
    assert response.status_code == 413
    assert "big.png: The file is larger than" in response.content.decode()
    assert stored_files() == []


def test_recent_jobs_are_listed_for_the_same_visitor_only(client, django_user_model):
    from django.test import Client

    client.post("/", {"image_file": [images.upload("mine.jpg", images.jpeg_bytes())]})
    assert "mine.jpg" in client.get("/").content.decode()
    assert "mine.jpg" not in Client().get("/").content.decode()


def test_media_is_served_as_an_image_never_as_html(client):
    client.post("/api/jobs/", {"image_file": images.upload("photo.jpg", images.jpeg_bytes())})
    job = Job.objects.get()

    response = client.get(f"/media/{job.original_path}")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == default_storage.open(job.original_path).read()


@pytest.mark.parametrize("path", ["jobs/../settings.py", "other/file.jpg", "jobs/nope/none.jpg"])
def test_media_outside_jobs_is_404(client, path):
    assert client.get(f"/media/{path}").status_code == 404


def test_stats_json_lists_summaries(client):
    from django.utils import timezone

    now = timezone.now()
    Summary.objects.create(
        period_start=now,
        period_end=now,
        jobs_created=3,
        jobs_succeeded=2,
        jobs_failed=1,
        backlog=0,
        processing_p50_ms=40,
        processing_p95_ms=90,
        queue_wait_p50_ms=5,
        queue_wait_p95_ms=9,
        bytes_in=1000,
        bytes_out=500,
    )

    body = client.get("/api/stats/").json()
    page = client.get("/stats/")

    assert body == {
        "summaries": [
            {
                "period_start": now.isoformat(),
                "period_end": now.isoformat(),
                "jobs_created": 3,
                "jobs_succeeded": 2,
                "jobs_failed": 1,
                "backlog": 0,
                "processing_p50_ms": 40,
                "processing_p95_ms": 90,
                "queue_wait_p50_ms": 5,
                "queue_wait_p95_ms": 9,
                "bytes_in": 1000,
                "bytes_out": 500,
            }
        ]
    }
    assert page.status_code == 200
    assert 'id="activity-chart"' in page.content.decode()


# --- DELETE /task/<id>/: the uploader deletes a job now --------------------------------------

GONE = {"error": {"code": "job_deleted", "message": "This job was deleted by its uploader."}}
NOT_FOUND = {"error": {"code": "unknown_job", "message": "There is no job with this id."}}


def api_upload(client) -> dict:
    return client.post("/api/jobs/", {"image_file": images.upload("mine.jpg", images.jpeg_bytes())}).json()


def test_an_api_client_deletes_its_job_with_the_token_from_its_202(client):
    accepted = api_upload(client)
    job = Job.objects.get()

    response = client.delete(
        accepted["status_url"], headers={"Authorization": f"Bearer {accepted['delete_token']}"}
    )

    assert (response.status_code, response.content) == (204, b"")
    assert stored_files() == []
    assert not default_storage.exists(f"jobs/{job.id}")
    status = client.get(accepted["status_url"])
    assert (status.status_code, status.json()) == (410, GONE)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-the-token", "Basic abc"],
    ids=["nothing", "wrong token", "other scheme"],
)
def test_anyone_else_is_told_there_is_no_such_job(authorization):
    from django.test import Client

    uploader, stranger = Client(), Client(enforce_csrf_checks=False)
    accepted = api_upload(uploader)
    headers = {"Authorization": authorization} if authorization else {}

    response = stranger.delete(accepted["status_url"], headers=headers)

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert Job.objects.get().deleted_at is None
    assert len(stored_files()) == 1


def test_the_browser_that_uploaded_deletes_with_its_session_and_csrf_token():
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/").content.decode()).group(
        1
    )
    browser.post(
        "/", {"csrfmiddlewaretoken": token, "image_file": [images.upload("mine.jpg", images.jpeg_bytes())]}
    )
    job = Job.objects.get()
    assert 'aria-label="Delete mine.jpg and its thumbnails"' in browser.get("/").content.decode()

    without_token = browser.delete(f"/task/{job.id}/")
    other_visitor = Client().delete(f"/task/{job.id}/")
    with_token = browser.delete(
        f"/task/{job.id}/", headers={"X-CSRFToken": browser.cookies["csrftoken"].value}
    )

    assert (without_token.status_code, without_token.json()["error"]["code"]) == (403, "csrf_failed")
    assert (other_visitor.status_code, other_visitor.json()) == (404, NOT_FOUND)
    assert with_token.status_code == 204
    assert stored_files() == []
    assert "mine.jpg" not in browser.get("/").content.decode()


def test_deleting_an_unknown_job_is_404(client):
    response = client.delete(f"/task/{uuid.uuid4()}/", headers={"Authorization": "Bearer x"})
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_a_delete_without_token_or_csrf_gets_the_same_403_whether_the_job_exists_or_not(client):
    from django.test import Client

    accepted = api_upload(client)
    browser = Client(enforce_csrf_checks=True)

    answers = [browser.delete(url) for url in (accepted["status_url"], f"/task/{uuid.uuid4()}/")]

    assert [(answer.status_code, answer.json()["error"]["code"]) for answer in answers] == [
        (403, "csrf_failed")
    ] * 2
    assert Job.objects.get().deleted_at is None


# --- callback_url: checked at the door ----------------------------------------------------


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "http://127.0.0.1:9/hook",
            "The callback URL points at a private, loopback or link-local address, which is not allowed.",
        ),
        (
            "http://169.254.169.254/latest/",
            "The callback URL points at a private, loopback or link-local address, which is not allowed.",
        ),
        ("file:///etc/passwd", "The callback URL must be an http:// or https:// URL with a host."),
        ("https://user:pw@example.com/", "The callback URL must not carry a user name or password."),
    ],
)
def test_a_refused_callback_url_is_400_and_nothing_is_kept(client, settings, url, message):
    settings.THUMBNAILER_WEBHOOK_SECRET = "s3cret"
    response = client.post(
        "/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes()), "callback_url": url}
    )

    assert (response.status_code, response.json()) == (
        400,
        {"error": {"code": "invalid_callback_url", "message": message}},
    )
    assert (Job.objects.count(), stored_files()) == (0, [])


def test_without_a_webhook_secret_callbacks_are_refused(client, settings):
    settings.THUMBNAILER_WEBHOOK_SECRET = ""
    response = client.post(
        "/api/jobs/",
        {
            "image_file": images.upload("a.jpg", images.jpeg_bytes()),
            "callback_url": "https://example.com/hook",
        },
    )

    assert response.json()["error"] == {
        "code": "invalid_callback_url",
        "message": "This server has no webhook secret configured, so it sends no webhooks.",
    }


def test_an_accepted_callback_url_is_kept_on_the_job(client, settings):
    settings.THUMBNAILER_WEBHOOK_SECRET = "s3cret"
    settings.THUMBNAILER_WEBHOOK_ALLOW_PRIVATE = True
    response = client.post(
        "/api/jobs/",
        {
            "image_file": images.upload("a.jpg", images.jpeg_bytes()),
            "callback_url": "http://127.0.0.1:9/hook",
        },
    )

    assert response.status_code == 202
    job = Job.objects.get()
    assert (job.callback_url, job.webhook_status) == ("http://127.0.0.1:9/hook", "pending")


def test_the_pages_script_gets_json_for_one_file_with_its_card(client):
    """The page's script posts each file to / asking for JSON; its card comes from the server."""
    client.get("/")
    response = client.post(
        "/",
        {"image_file": [images.upload("mine.jpg", images.jpeg_bytes())]},
        headers={"Accept": "application/json"},
    )

    job = Job.objects.get()
    assert response.status_code == 202
    assert response.json()["card_url"] == f"/task/{job.id}/card/"
    card = client.get(response.json()["card_url"]).content.decode()
    assert card.strip().startswith('<li class="job state-pending"') and "mine.jpg" in card
    assert 'class="job-delete"' in card  # the session that uploaded it may delete it


def test_the_pages_script_gets_refusals_in_json(client):
    response = client.post(
        "/",
        {"image_file": [images.upload("x.gif", b"GIF89a-not-really")]},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_an_image"


def test_a_card_of_someone_elses_job_has_no_delete_button(client):
    from django.test import Client

    client.post("/", {"image_file": [images.upload("mine.jpg", images.jpeg_bytes())]})
    job = Job.objects.get()

    card = Client().get(f"/task/{job.id}/card/").content.decode()

    assert "mine.jpg" in card and "job-delete" not in card


def test_download_all_streams_one_zip_of_the_finished_jobs_files(client):
    import io
    import zipfile

    from thumbnailer import services

    ids = []
    for name, color in [("photo.jpg", (200, 0, 0)), ("photo.jpg", (0, 200, 0)), ("other.png", None)]:
        data = images.png_bytes() if color is None else images.jpeg_bytes(color=color)
        ids.append(client.post("/api/jobs/", {"image_file": images.upload(name, data)}).json()["task_id"])
    for job_id in ids[:2]:
        services.job_process(job_id=job_id)  # the third is still waiting, so it is left out

    response = client.get(f"/jobs/zip/?ids={','.join(ids)},not-a-uuid")

    assert (response.status_code, response["Content-Type"]) == (200, "application/zip")
    assert response["Content-Disposition"] == 'attachment; filename="thumbnails.zip"'
    assert response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == [
        "photo/photo.jpg",
        "photo/photo_128x128.jpg",
        "photo_2/photo.jpg",
        "photo_2/photo_128x128.jpg",
    ]
    first = Job.objects.get(id=ids[0])
    assert archive.read("photo/photo.jpg") == default_storage.open(first.original_path).read()


def test_download_all_of_nothing_finished_is_404(client):
    assert client.get(f"/jobs/zip/?ids={uuid.uuid4()}").status_code == 404


def test_storage_that_cannot_be_written_is_a_503_with_retry_after_and_nothing_kept(
    client, settings, tmp_path
):
    (tmp_path / "a-file").write_text("media cannot live under a file")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"

    response = client.post("/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes())})

    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert response.json() == {
        "error": {
            "code": "storage_unavailable",
            "message": "File storage is not available right now; nothing was stored. Please try again in a minute.",
        }
    }
    assert Job.objects.count() == 0


# --- Thumbnail options through the API -----------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"mode": "stretch"}, "mode must be one of fit, fill, smart."),
        ({"mode": "fill", "focus": "1.5,0.2"}, "focus must be two fractions between 0 and 1, like 0.5,0.3."),
        ({"mode": "fill", "focus": "middle"}, "focus must be two fractions between 0 and 1, like 0.5,0.3."),
        ({"format": "tiff"}, "format must be one of auto, jpeg, png, webp, avif."),
        ({"quality": "0"}, "quality must be a whole number from 1 to 100."),
        ({"quality": "101"}, "quality must be a whole number from 1 to 100."),
        ({"quality": "high"}, "quality must be a whole number from 1 to 100."),
        ({"sizes": "128x4096"}, "sizes: Each side of a size must be between 1 and 2048 pixels."),
    ],
)
def test_every_bad_option_is_400_invalid_option_naming_the_field(client, fields, message):
    response = client.post(
        "/api/jobs/", {"image_file": images.upload("a.jpg", images.jpeg_bytes()), **fields}
    )

    assert (response.status_code, response.json()) == (
        400,
        {"error": {"code": "invalid_option", "message": message}},
    )
    assert Job.objects.count() == 0


def test_options_are_kept_on_the_job_and_shape_its_thumbnails(client):
    from thumbnailer import services

    response = client.post(
        "/api/jobs/",
        {
            "image_file": images.upload("wide.jpg", images.jpeg_bytes((1200, 400))),
            "sizes": "128x128,64x96",
            "mode": "fill",
            "focus": "0.8,0.5",
            "format": "webp",
            "quality": "70",
        },
    )
    job = Job.objects.get(id=response.json()["task_id"])
    assert (job.mode, job.focus, job.output_format, job.quality) == ("fill", [0.8, 0.5], "webp", 70)

    services.job_process(job_id=job.id)
    status = client.get(f"/task/{job.id}/").json()

    assert [
        (t["size"], t["width"], t["height"], t["mode"], t["format"]) for t in status["results"]["thumbnails"]
    ] == [
        ("128x128", 128, 128, "fill", "WEBP"),
        ("64x96", 64, 96, "fill", "WEBP"),
    ]
    assert status["results"]["thumbnails"][0]["url"].endswith("/wide_128x128.webp")
