"""The whole product as separate processes: gunicorn, `celery worker`, `celery beat`, Redis."""

import io
import zipfile

import pytest

from thumbnailer.models import Summary

from .support import images
from .support.http import post_image, request
from .support.polling import wait_for_job, wait_until
from .support.processes import start_beat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def beat(django_db_setup):
    """`celery beat` with a two-second summary interval, so a Summary appears quickly."""
    process = start_beat(SUMMARY_INTERVAL_SECONDS=2)
    yield process
    process.stop()


def test_upload_over_http_gives_thumbnail_zip_and_summary(web_server, celery_worker_process, beat):
    original = images.jpeg_bytes((2000, 1000))

    accepted = post_image(web_server.url, "wide photo.jpg", original)

    assert accepted.status == 202
    status_url = accepted.json["status_url"]
    assert accepted.headers["Location"] == status_url

    body = wait_for_job(web_server.url, accepted.json["task_id"])
    assert body["task_status"] == "SUCCESS"
    [thumbnail] = body["results"]["thumbnails"]
    assert (thumbnail["width"], thumbnail["height"]) == (128, 64)

    thumb = request("GET", web_server.url + thumbnail["url"])
    assert (thumb.status, thumb.headers["Content-Type"], len(thumb.raw)) == (
        200,
        "image/jpeg",
        thumbnail["bytes"],
    )
    archive = request("GET", web_server.url + body["results"]["archive_path"])
    assert (archive.status, archive.headers["Content-Type"]) == (200, "application/zip")
    assert zipfile.ZipFile(io.BytesIO(archive.raw)).read("wide_photo.jpg") == original

    # beat has sent summarize every two seconds; the worker wrote the rows.
    wait_until(
        lambda: Summary.objects.filter(jobs_succeeded__gte=1).exists(),
        timeout=20,
        message="a Summary counting the job",
    )
    stats = request("GET", web_server.url + "/api/stats/")
    assert stats.status == 200
    assert sum(row["jobs_succeeded"] for row in stats.json["summaries"]) >= 1


def test_a_status_read_with_wait_answers_when_the_job_is_done(web_server, celery_worker_process):
    """?wait= holds the answer until the worker records the end: one read, and it says SUCCESS."""
    accepted = post_image(web_server.url, "wait.jpg", images.jpeg_bytes((1600, 1200), color=(200, 40, 90)))

    body = request("GET", f"{web_server.url}{accepted.json['status_url']}?wait=20", timeout=30).json

    assert (body["task_id"], body["task_status"]) == (accepted.json["task_id"], "SUCCESS")
    assert body["results"]["thumbnails"][0]["width"] == 128


def test_an_upload_preferring_to_wait_is_answered_with_its_thumbnails(web_server, celery_worker_process):
    """`Prefer: wait=N` holds the upload's answer until the worker records the end: one request."""
    accepted = post_image(
        web_server.url,
        "prefer.jpg",
        images.jpeg_bytes((1600, 1200), color=(40, 200, 90)),
        headers={"Prefer": "wait=20"},
        timeout=30,
    )

    assert (accepted.status, accepted.headers["Preference-Applied"]) == (201, "wait=20")
    body = accepted.json
    assert body["task_status"] == "SUCCESS"
    assert accepted.headers["Location"] == body["status_url"]
    assert body["results"]["thumbnails"][0]["width"] == 128
    assert request("GET", web_server.url + body["status_url"]).json["results"] == body["results"]
    deleted = request(
        "DELETE",
        web_server.url + body["status_url"],
        headers={"Authorization": f"Bearer {body['delete_token']}"},
    )
    assert deleted.status == 204


def test_the_same_image_again_is_done_on_its_first_status_read(web_server, celery_worker_process):
    """A repeat is answered from the earlier result, hashed as it streamed in: SUCCESS at once, own files."""
    original = images.jpeg_bytes((1200, 900), color=(10, 160, 90))
    first = post_image(web_server.url, "first.jpg", original, sizes="128x128,64x64")
    assert wait_for_job(web_server.url, first.json["task_id"])["task_status"] == "SUCCESS"

    again = post_image(web_server.url, "again.jpg", original, sizes="128x128,64x64")
    body = request("GET", web_server.url + again.json["status_url"]).json

    task_id = again.json["task_id"]
    assert (again.status, again.json["task_status"], body["task_status"]) == (202, "SUCCESS", "SUCCESS")
    assert [thumbnail["url"] for thumbnail in body["results"]["thumbnails"]] == [
        f"/media/jobs/{task_id}/again_128x128.jpg",
        f"/media/jobs/{task_id}/again_64x64.jpg",
    ]
    archive = request("GET", web_server.url + body["results"]["archive_path"])
    assert zipfile.ZipFile(io.BytesIO(archive.raw)).read("again.jpg") == original
