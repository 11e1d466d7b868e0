"""Storage: the filesystem and a real S3-compatible server (moto's, on 127.0.0.1), never a mock.

Every write replaces a file without a moment where it is missing; every URL in pages and JSON
is /media/<path>, which an object store answers with a redirect to a link that expires.
"""

import io
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files import File
from django.core.files.storage import default_storage

from thumbnailer import services, storage_io
from thumbnailer.models import Job
from thumbnailer.templatetags.thumbnailer_tags import storage_url

from .support import images
from .support.http import post_image, request
from .support.polling import wait_for_job
from .support.processes import PROJECT_ROOT, process_env

STORAGES = ["filesystem", "s3"]


@pytest.fixture(params=STORAGES)
def any_storage(request, media_root):
    """Each test runs on the filesystem (a temporary MEDIA_ROOT) and on an S3 bucket of its own."""
    if request.param == "s3":
        request.getfixturevalue("s3_storage")
    return request.param


def media_files(media_root) -> list[str]:
    return sorted(str(path.relative_to(media_root)) for path in media_root.rglob("*"))


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 302 itself comes back as the answer


def get_without_redirect(url: str):
    return request("GET", url, opener=urllib.request.build_opener(NoRedirects))


def test_public_urls_are_site_relative_whatever_the_storage(any_storage):
    assert storage_io.public_url("jobs/abc/photo_128x128.jpg") == "/media/jobs/abc/photo_128x128.jpg"
    assert storage_io.public_url("jobs/abc/a b#1.zip") == "/media/jobs/abc/a%20b%231.zip"
    assert storage_url("jobs/abc/photo.zip") == "/media/jobs/abc/photo.zip"  # the pages' filter


def test_write_exact_replaces_without_a_moment_where_the_file_is_missing(any_storage):
    """A reader polling the path while it is rewritten always finds one whole version, old or new."""
    path = "jobs/replaced/photo.zip"
    versions = [bytes([index]) * (256 * 1024) for index in range(2)]
    storage_io.write_exact(path, versions[0])
    seen: list[str] = []
    stop = threading.Event()

    def read_while_written():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                data = storage_io.read_all(path)
            except Exception as error:  # FileNotFoundError from the disk, botocore's 404 from S3
                seen.append(f"missing: {error!r}")
                continue
            seen.append("whole" if data in versions else f"partial ({len(data)} bytes)")

    reader = threading.Thread(target=read_while_written)
    reader.start()
    try:
        for round_number in range(1, 21):
            assert storage_io.write_exact(path, versions[round_number % 2]) == 256 * 1024
    finally:
        stop.set()
        reader.join(timeout=70)

    assert seen and set(seen) == {"whole"}, sorted(set(seen))
    assert storage_io.read_all(path) == versions[0]
    assert default_storage.listdir("jobs/replaced") == ([], ["photo.zip"])  # no temporary file left


def test_write_exact_streams_a_file_and_reports_its_size(any_storage, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)  # above the memory thresholds: spooled, multipart
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    with source.open("rb") as opened:
        assert storage_io.write_exact("jobs/streamed/original.png", File(opened)) == len(data)
    assert storage_io.read_all("jobs/streamed/original.png") == data


def test_a_25_mib_upload_is_never_held_in_memory_twice(any_storage, tmp_path):
    """Stored from a file on disk (as Django keeps big uploads) and read back whole, as a worker does."""
    size = 25 * 1024 * 1024
    source = tmp_path / "upload.png"
    source.write_bytes(os.urandom(size))
    tracemalloc.start()
    try:
        with source.open("rb") as opened:
            storage_io.write_exact("jobs/big/original.png", File(opened))
        _, writing_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        data = storage_io.read_all("jobs/big/original.png")
        _, reading_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(data) == size
    assert writing_peak < size, f"{writing_peak / 2**20:.1f} MiB to store it"
    assert reading_peak < 2 * size, f"{reading_peak / 2**20:.1f} MiB to read it"


def test_a_failed_filesystem_write_leaves_the_old_file_and_no_temporary_file(media_root):
    """A directory squatting the name makes the rename fail: the error is raised, nothing is left over."""
    (media_root / "jobs/squatted/photo_128x128.jpg/occupied").mkdir(parents=True)
    storage_io.write_exact("jobs/squatted/photo.zip", b"zip")

    with pytest.raises(IsADirectoryError):
        storage_io.write_exact("jobs/squatted/photo_128x128.jpg", b"thumbnail")

    assert sorted(os.listdir(media_root / "jobs/squatted")) == ["photo.zip", "photo_128x128.jpg"]


def test_delete_folder_empties_a_job_folder(any_storage):
    for name in ("photo.jpg", "photo_128x128.jpg", "photo.zip"):
        storage_io.write_exact(f"jobs/doomed/{name}", b"x")
    storage_io.write_exact("jobs/kept/photo.jpg", b"y")

    assert storage_io.delete_folder("jobs/doomed") == 3

    assert default_storage.listdir("jobs")[0] == ["kept"]
    assert storage_io.delete_folder("jobs/doomed") == 0


@pytest.mark.django_db
def test_a_job_is_processed_in_the_bucket_and_nothing_lands_under_media_root(
    s3_storage, media_root, s3_server
):
    original = images.jpeg_bytes((640, 480))
    upload = images.upload("Holiday photo.jpg", original)
    header = services.upload_inspect(upload=upload)
    job = services.job_create(upload=upload, header=header, boxes=[(128, 128)], owner_key="visitor")

    services.job_process(job_id=job.id)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCESS
    listed = s3_server.client().list_objects_v2(Bucket=s3_storage, Prefix=f"jobs/{job.id}/")
    assert sorted(item["Key"].rsplit("/", 1)[-1] for item in listed["Contents"]) == [
        "Holiday_photo.jpg",
        "Holiday_photo.zip",
        "Holiday_photo_128x128.jpg",
    ]
    archive = zipfile.ZipFile(io.BytesIO(storage_io.read_all(job.archive_path)))
    assert archive.read("Holiday_photo.jpg") == original
    assert media_files(media_root) == []

    services.job_delete(job_id=job.id)
    assert s3_server.client().list_objects_v2(Bucket=s3_storage, Prefix=f"jobs/{job.id}/")["KeyCount"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content_type", "disposition"),
    [
        ("photo.zip", "application/zip", 'attachment; filename="photo.zip"'),
        ("photo_128x128.jpg", "image/jpeg", 'inline; filename="photo_128x128.jpg"'),
        # A type the object store would not know from the name: the link carries ours.
        ("photo.heic", "image/heic", 'inline; filename="photo.heic"'),
    ],
)
def test_media_from_s3_redirects_to_a_link_that_expires(
    client, s3_storage, s3_server, name, content_type, disposition
):
    data = images.jpeg_bytes() if name.endswith(".jpg") else b"PK\x05\x06" + bytes(18)  # an empty zip
    storage_io.write_exact(f"jobs/abc/{name}", data)

    response = client.get(f"/media/jobs/abc/{name}")

    assert response.status_code == 302
    assert response["Cache-Control"] == "private, max-age=1800"
    location = response["Location"]
    assert location.startswith(f"{s3_server.url}/{s3_storage}/jobs/abc/{name}?")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["3600"]
    download = request("GET", location)
    assert (download.status, download.raw) == (200, data)
    headers = {name.lower(): value for name, value in download.headers.items()}
    assert (headers["content-type"], headers["content-disposition"]) == (content_type, disposition)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["jobs/abc/missing.jpg", "jobs/../secret.txt", "elsewhere/photo.jpg"])
def test_media_from_s3_keeps_its_safety_checks(client, s3_storage, s3_server, path):
    s3_server.client().put_object(Bucket=s3_storage, Key="elsewhere/photo.jpg", Body=b"x")
    s3_server.client().put_object(Bucket=s3_storage, Key="secret.txt", Body=b"x")

    assert client.get(f"/media/{path}").status_code == 404


def test_settings_switch_to_the_bucket_from_the_environment(s3_server):
    """The storage section of settings, read by a fresh process: the bucket's variables, or the disk."""
    # The one value JSON cannot hold is boto3's TransferConfig: compared by its use_threads.
    script = "import json, django; django.setup(); from django.conf import settings; "
    script += "print(json.dumps(settings.STORAGES['default'], default=lambda config: config.use_threads))"

    def default_storage_of(**env) -> dict:
        inherited = process_env(DJANGO_SETTINGS_MODULE="thumbnailer_project.settings")
        environment = {name: value for name, value in inherited.items() if not name.startswith("AWS_")}
        environment.update({name: str(value) for name, value in env.items()})
        ran = subprocess.run(
            [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, capture_output=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr.decode()
        return json.loads(ran.stdout)

    assert default_storage_of() == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    expected = json.loads(
        json.dumps(s3_server.storage_options("photos"), default=lambda config: config.use_threads)
    )
    assert default_storage_of(**s3_server.env("photos")) == expected
    expiring = default_storage_of(**s3_server.env("photos"), AWS_QUERYSTRING_EXPIRE=60)
    assert expiring["OPTIONS"]["querystring_expire"] == 60


@pytest.mark.slow
def test_a_job_through_web_and_worker_on_s3_keeps_media_urls_and_no_disk(
    private_stack, s3_server, s3_bucket, media_root
):
    """gunicorn and a real worker with the bucket's variables: /media/ URLs redirect to the bucket."""
    env = s3_server.env(s3_bucket)
    web = private_stack.web(**env)
    private_stack.worker(**env)
    original = images.photo_like_jpeg()

    reply = post_image(web.url, "Holiday photo.jpg", original, sizes="128x128,64x64")
    assert reply.status == 202, reply.text
    task_id = reply.json["task_id"]
    status = wait_for_job(web.url, task_id)

    job = Job.objects.get(id=task_id)
    folder = f"/media/jobs/{task_id}"
    assert status == {
        "task_id": task_id,
        "task_status": "SUCCESS",
        "results": {
            "archive_path": f"{folder}/Holiday_photo.zip",
            "original": {
                "url": f"{folder}/Holiday_photo.jpg",
                "width": 1600,
                "height": 1200,
                "format": "JPEG",
                "bytes": len(original),
            },
            "thumbnails": [
                {
                    "size": thumb["size"],
                    "url": f"{folder}/{thumb['path'].rsplit('/', 1)[-1]}",
                    "width": thumb["width"],
                    "height": thumb["height"],
                    "format": "JPEG",
                    "mode": "fit",
                    "bytes": thumb["bytes"],
                }
                for thumb in job.thumbnails
            ],
        },
    }
    assert [thumb["size"] for thumb in job.thumbnails] == ["128x128", "64x64"]

    redirect = get_without_redirect(web.url + status["results"]["archive_path"])
    assert redirect.status == 302
    assert redirect.headers["Location"].startswith(
        f"{s3_server.url}/{s3_bucket}/jobs/{task_id}/Holiday_photo.zip?"
    )
    archive_reply = request("GET", redirect.headers["Location"])
    assert archive_reply.status == 200
    archive = zipfile.ZipFile(io.BytesIO(archive_reply.raw))
    assert archive.namelist() == [
        "Holiday_photo.jpg",
        "Holiday_photo_128x128.jpg",
        "Holiday_photo_64x64.jpg",
        "manifest.json",
    ]
    assert archive.read("Holiday_photo.jpg") == original
    assert media_files(media_root) == []
