"""The tests' one HTTP client for a running server: JSON API, job status and the upload form.

Standard library only. Every answer, 4xx and 5xx included, comes back as a Reply; only a
connection that fails raises (OSError).
"""

import http.cookiejar
import json
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

REQUEST_TIMEOUT_SECONDS = 30


@dataclass
class Reply:
    status: int
    headers: dict
    json: dict | None  # the body parsed, when the answer says it is JSON
    text: str
    raw: bytes


def encode_multipart(
    files: list[tuple[str, bytes]],
    fields: dict[str, str] | None = None,
    *,
    content_type: str = "application/octet-stream",
) -> tuple[bytes, str]:
    """Body and content type of an upload: each (name, data) an `image_file` part, its name sent as given."""
    boundary = f"----thumbnailer-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    for file_name, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; '
            f'filename="{file_name}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        # surrogateescape: names that are not valid UTF-8 still go out byte for byte.
        parts.append(head.encode("utf-8", "surrogateescape") + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def csrf_token(page: str) -> str:
    """The CSRF token of the upload page's form."""
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    opener: urllib.request.OpenerDirector | None = None,
) -> Reply:
    """One HTTP request, answered with a Reply whatever its status."""
    prepared = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(prepared, timeout=timeout) as response:
            status, reply_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, reply_headers, raw = error.code, dict(error.headers), error.read()
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if "json" in reply_headers.get("Content-Type", "") else None
    except ValueError:
        parsed = None
    return Reply(status=status, headers=reply_headers, json=parsed, text=text, raw=raw)


def post_image(
    base_url: str,
    name: str,
    data: bytes,
    *,
    sizes: str | None = None,
    headers: dict | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Reply:
    """POST one file to the JSON API, the way a script with curl would."""
    body, content_type = encode_multipart(
        [(name, data)], {"sizes": sizes} if sizes else None, content_type="image/jpeg"
    )
    headers = {"Content-Type": content_type, **(headers or {})}
    return request("POST", f"{base_url}/api/jobs/", body=body, headers=headers, timeout=timeout)


def get_status(base_url: str, task_id: str) -> Reply:
    return request("GET", f"{base_url}/task/{task_id}/")


def post_form(base_url: str, files: list[tuple[str, bytes]]) -> Reply:
    """Post files through the upload page's form like a browser without JavaScript (CSRF included)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = request("GET", f"{base_url}/", opener=opener)
    body, content_type = encode_multipart(files, {"csrfmiddlewaretoken": csrf_token(page.text)})
    return request("POST", f"{base_url}/", body=body, headers={"Content-Type": content_type}, opener=opener)


def job_status(server, task_id: str) -> dict:
    """A job's status JSON, from a running server's base URL or through a Django test client."""
    if isinstance(server, str):
        reply = get_status(server, task_id)
        status, body = reply.status, reply.json
    else:
        response = server.get(f"/task/{task_id}/")
        status, body = response.status_code, response.json()
    assert status == 200, (status, body)
    return body
