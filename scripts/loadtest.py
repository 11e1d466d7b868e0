"""`make loadtest`: many clients upload at once against a running Thumbnailer (the `make run` stack).

Each client uploads its images one after another through POST /api/jobs/ and polls the job's
status until it finishes, the way a person waits for their thumbnails before the next upload.
Prints uploads/s, p50/p95 upload->SUCCESS latency and the error count.

Bounded: a fixed number of uploads, a per-job and a whole-run deadline. Loopback only: it
refuses any other host, so it can never be pointed at someone else's server by mistake.

    .venv/bin/python scripts/loadtest.py [--clients 20] [--uploads 10] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import ipaddress
import json
import os
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

FINISHED = ("SUCCESS", "FAILURE")
POLL_INTERVAL_SECONDS = 0.1
REQUEST_TIMEOUT_SECONDS = 30


@dataclass
class Reply:
    status: int
    headers: dict
    body: dict | None
    text: str
    raw: bytes


@dataclass
class UploadRecord:
    """What happened to one upload, from the client's side."""

    client: int
    number: int
    sha256: str
    upload_status: int = 0
    task_id: str = ""
    final_status: str = ""
    latency_seconds: float | None = None
    error: str = ""
    server_errors: int = 0


@dataclass
class LoadReport:
    clients: int
    uploads_per_client: int
    wall_seconds: float
    records: list[UploadRecord] = field(default_factory=list)

    @property
    def succeeded(self) -> list[UploadRecord]:
        return [record for record in self.records if record.final_status == "SUCCESS"]

    @property
    def errors(self) -> int:
        return sum(1 for record in self.records if record.error)

    @property
    def server_errors(self) -> int:
        """5xx answers seen anywhere (uploads and status polls)."""
        return sum(record.server_errors for record in self.records)

    @property
    def uploads_per_second(self) -> float:
        return len(self.succeeded) / self.wall_seconds if self.wall_seconds else 0.0

    def latency_percentile(self, percent: int) -> float | None:
        latencies = sorted(record.latency_seconds for record in self.succeeded)
        if not latencies:
            return None
        if len(latencies) == 1:
            return latencies[0]
        return statistics.quantiles(latencies, n=100, method="inclusive")[percent - 1]

    def summary_lines(self) -> list[str]:
        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f} s"

        return [
            f"uploads: {len(self.records)} ({self.clients} clients x {self.uploads_per_client}), "
            f"succeeded: {len(self.succeeded)}, wall time: {self.wall_seconds:.1f} s",
            f"uploads/s: {self.uploads_per_second:.2f}",
            f"latency upload->SUCCESS: p50 {seconds(self.latency_percentile(50))}, "
            f"p95 {seconds(self.latency_percentile(95))}",
            f"errors: {self.errors} (5xx answers: {self.server_errors})",
        ]


# --- HTTP, standard library only ------------------------------------------------------------


def encode_multipart(fields: dict[str, str], files: list[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    """Body and content type of a multipart/form-data request; files are (field, name, data, type)."""
    boundary = f"----thumbnailer-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for field_name, file_name, data, content_type in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{file_name}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        parts.append(head.encode("utf-8", "surrogateescape") + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Reply:
    """One HTTP request; any status (4xx and 5xx included) comes back as a Reply."""
    prepared = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:
            status, reply_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, reply_headers, raw = error.code, dict(error.headers), error.read()
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if "json" in reply_headers.get("Content-Type", "") else None
    except ValueError:
        parsed = None
    return Reply(status=status, headers=reply_headers, body=parsed, text=text, raw=raw)


def post_image(
    base_url: str, name: str, data: bytes, *, sizes: str | None = None, content_type: str = "image/jpeg"
) -> Reply:
    """POST one file to the JSON API, the way a script with curl would."""
    fields = {"sizes": sizes} if sizes else {}
    body, multipart_type = encode_multipart(fields, [("image_file", name, data, content_type)])
    return request("POST", f"{base_url}/api/jobs/", body=body, headers={"Content-Type": multipart_type})


def get_status(base_url: str, task_id: str) -> Reply:
    return request("GET", f"{base_url}/task/{task_id}/")


# --- The load -------------------------------------------------------------------------------


def make_image(client: int, number: int, size: tuple[int, int]) -> bytes:
    """A distinct JPEG per upload, so a mix-up between jobs would show in their bytes."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize(size).convert("RGB")
    ImageDraw.Draw(image).rectangle(
        (client * 7 % size[0], number * 11 % size[1], size[0] // 2, size[1] // 2),
        fill=(client * 12 % 256, number * 25 % 256, 90),
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def run_client(
    base_url: str,
    client: int,
    images: list[bytes],
    *,
    job_timeout: float,
    deadline: float,
    stop: threading.Event,
) -> list[UploadRecord]:
    records = []
    for number, data in enumerate(images):
        record = UploadRecord(client=client, number=number, sha256=hashlib.sha256(data).hexdigest())
        records.append(record)
        if stop.is_set() or time.monotonic() > deadline:
            record.error = "not sent: the run's deadline passed"
            continue
        started = time.monotonic()
        try:
            reply = post_image(base_url, "photo.jpg", data)
        except OSError as error:
            record.error = f"upload failed: {error}"
            continue
        record.upload_status = reply.status
        record.server_errors += reply.status >= 500
        if reply.status != 202 or not reply.body:
            record.error = f"upload answered {reply.status}: {reply.text[:200]}"
            continue
        record.task_id = reply.body["task_id"]
        finish_by = min(started + job_timeout, deadline)
        while time.monotonic() < finish_by and not stop.is_set():
            try:
                status = get_status(base_url, record.task_id)
            except OSError as error:
                record.error = f"status poll failed: {error}"
                break
            record.server_errors += status.status >= 500
            state = (status.body or {}).get("task_status", "")
            if state in FINISHED:
                record.final_status = state
                record.latency_seconds = time.monotonic() - started
                if state == "FAILURE":
                    record.error = f"job failed: {status.body.get('error')}"
                break
            time.sleep(POLL_INTERVAL_SECONDS)
        else:
            record.error = record.error or "job did not finish in time"
    return records


def run_load(
    base_url: str,
    *,
    clients: int = 20,
    uploads: int = 10,
    image_size=(1600, 1200),
    job_timeout: float = 60.0,
    run_timeout: float = 240.0,
) -> LoadReport:
    """Run `clients` concurrent clients of `uploads` uploads each; bounded by `run_timeout`."""
    images = {
        client: [make_image(client, number, image_size) for number in range(uploads)]
        for client in range(clients)
    }
    stop = threading.Event()
    started = time.monotonic()
    deadline = started + run_timeout
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(
                run_client,
                base_url,
                client,
                images[client],
                job_timeout=job_timeout,
                deadline=deadline,
                stop=stop,
            )
            for client in range(clients)
        ]
        try:
            records = [record for future in futures for record in future.result()]
        except BaseException:
            stop.set()
            raise
    return LoadReport(
        clients=clients, uploads_per_client=uploads, wall_seconds=time.monotonic() - started, records=records
    )


def require_loopback(base_url: str) -> None:
    """Refuse anything but this machine: a load test must never hit a server by accident."""
    host = urllib.parse.urlsplit(base_url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise SystemExit(f"loadtest: cannot resolve {host!r}: {error}") from None
    if not addresses or not all(
        ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses
    ):
        raise SystemExit(f"loadtest: {host!r} is not this machine; only loopback addresses are allowed.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=10, help="uploads per client")
    parser.add_argument("--job-timeout", type=float, default=60.0, help="seconds one job may take")
    parser.add_argument("--run-timeout", type=float, default=240.0, help="seconds the whole run may take")
    parser.add_argument("--json", action="store_true", help="print every upload's record as JSON too")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 200 and 1 <= args.uploads <= 1000):
        parser.error("--clients must be 1-200 and --uploads 1-1000")

    base_url = args.url.rstrip("/")
    require_loopback(base_url)
    try:
        request("GET", f"{base_url}/", timeout=5)
    except OSError as error:
        print(
            f"loadtest: nothing answers at {base_url} ({error}); start it with `make run`.", file=sys.stderr
        )
        return 2

    print(f"loadtest: {args.clients} clients x {args.uploads} uploads against {base_url}", flush=True)
    report = run_load(
        base_url,
        clients=args.clients,
        uploads=args.uploads,
        job_timeout=args.job_timeout,
        run_timeout=args.run_timeout,
    )
    print("\n".join(report.summary_lines()))
    if args.json:
        print(json.dumps([asdict(record) for record in report.records]))
    for record in [record for record in report.records if record.error][:10]:
        print(f"  client {record.client} upload {record.number}: {record.error}", file=sys.stderr)
    return 0 if report.errors == 0 and report.server_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
