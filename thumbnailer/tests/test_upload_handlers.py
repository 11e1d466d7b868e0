"""The size cap on uploads, and answers to refused bodies that every HTTP client can read."""

import http.client
import io
import json
import re
from urllib.parse import urlsplit

import pytest
import requests
from django.test import RequestFactory

from thumbnailer import upload_handlers
from thumbnailer.models import Job

# Bigger than the 25 MiB cap and far bigger than the kernel's socket buffers, so a server that
# answered without reading the body would close the connection while the client still sends.
FORTY_MB = 40 * 1000 * 1000


class CountingStream(io.RawIOBase):
    """A request body that says how much of it the server read."""

    def __init__(self, size: int):
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.read_bytes)
        buffer[:count] = b"\0" * count
        self.read_bytes += count
        return count


def request_with_body(size: int):
    body = CountingStream(size)
    request = RequestFactory().post("/api/jobs/", content_type="application/octet-stream")
    request.META["CONTENT_LENGTH"] = str(size)
    request.META["wsgi.input"] = body
    request._stream = io.BufferedReader(body)  # what Django reads the body from
    return request, body


def test_a_refused_body_is_read_to_its_end_within_the_bound(settings):
    settings.THUMBNAILER_DISCARD_BODY_BYTES = 5_000_000
    request, body = request_with_body(3_000_000)

    assert upload_handlers.discard_body(request) is True
    assert body.read_bytes == 3_000_000


def test_a_body_past_the_bound_is_not_read(settings):
    settings.THUMBNAILER_DISCARD_BODY_BYTES = 1_000_000
    request, body = request_with_body(3_000_000)

    assert upload_handlers.discard_body(request) is False
    assert body.read_bytes == 0


@pytest.mark.parametrize(
    "declared, files, too_large",
    [
        (25 * 1024 * 1024, 1, False),
        (26 * 1024 * 1024, 1, True),
        (26 * 1024 * 1024, 2, False),
        ("junk", 1, False),
    ],
    ids=["one file at the cap", "one file past it", "two files", "unreadable length"],
)
def test_declared_body_too_large(settings, declared, files, too_large):
    settings.THUMBNAILER_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
    request = RequestFactory().post("/api/jobs/", content_type="application/octet-stream")
    request.META["CONTENT_LENGTH"] = str(declared)

    assert upload_handlers.declared_body_too_large(request, files=files) is too_large


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_python_requests_reads_the_413_for_a_40_mb_api_upload(web_server):
    """Python's requests sends the whole body before it reads: it must get the answer, not a broken pipe."""
    response = requests.post(
        f"{web_server.url}/api/jobs/", files={"image_file": ("big.jpg", b"\xff" * FORTY_MB)}, timeout=60
    )

    assert (response.status_code, response.json()) == (
        413,
        {"error": {"code": "file_too_large", "message": "The file is larger than the 25 MiB limit."}},
    )
    assert Job.objects.count() == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_standard_library_client_reads_the_413_for_a_40_mb_api_upload(web_server):
    """http.client stops at the first failed send: a server that closed early gives it a broken pipe."""
    boundary = "thumbnailer-test-boundary"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; filename="big.jpg"\r\n'.encode(),
            b"Content-Type: image/jpeg\r\n\r\n",
            b"\xff" * FORTY_MB,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    address = urlsplit(web_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        connection.request(
            "POST",
            "/api/jobs/",
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        response = connection.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        connection.close()

    assert (status, answer["error"]["code"]) == (413, "file_too_large")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_python_requests_reads_the_413_for_a_40_mb_form_upload(web_server):
    """The same through the page's form, CSRF token and all: the page answers with the file named."""
    session = requests.Session()
    page = session.get(f"{web_server.url}/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    response = session.post(
        f"{web_server.url}/",
        data={"csrfmiddlewaretoken": token},
        files={"image_file": ("big.jpg", b"\xff" * FORTY_MB)},
        headers={"Referer": f"{web_server.url}/"},
        timeout=60,
    )

    assert response.status_code == 413
    assert "big.jpg: The file is larger than the 25 MiB limit." in response.text
    assert Job.objects.count() == 0
