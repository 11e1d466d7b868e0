"""A tiny HTTP client for tests that talk to a real server process (stdlib only)."""
import json
import urllib.error
import urllib.request
import uuid


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """Encode form fields and (field, filename, data) files as multipart/form-data."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for field, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None, timeout=10):
    """Return (status, headers, body bytes), for error statuses too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def post_image(base_url: str, filename: str, data: bytes, **fields) -> tuple[int, dict, dict]:
    """POST one image to the JSON API; return (status, headers, JSON body)."""
    body, content_type = multipart(fields, [("image_file", filename, data)])
    status, headers, raw = request(
        "POST", f"{base_url}/api/jobs/", body=body, headers={"Content-Type": content_type}
    )
    return status, headers, json.loads(raw)


def get_json(url: str) -> tuple[int, dict]:
    status, _, raw = request("GET", url)
    return status, json.loads(raw)
