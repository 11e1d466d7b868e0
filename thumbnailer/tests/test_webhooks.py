"""Webhook delivery (thumbnailer/webhooks.py): signed POSTs to a real receiver on loopback, and the SSRF guard."""

import hashlib
import hmac
import http.server
import json
import socket
import threading

import pytest

from thumbnailer import webhooks
from thumbnailer.models import Job

from .support import images
from .support.http import encode_multipart, get_status, request
from .support.polling import wait_until

SECRET = "webhook-test-secret"


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers each POST with the next status in `answers`."""

    def __init__(self, answers: list[int]):
        self.answers = list(answers)
        self.received: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/thumbnails?client=7"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_the_signature_is_the_hex_hmac_sha256_of_the_body():
    body = b'{"task_id": "x"}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert webhooks.sign(body, secret=SECRET) == f"sha256={expected}"


def test_a_delivery_is_a_signed_json_post_the_receiver_can_verify():
    body = json.dumps({"task_id": "abc", "task_status": "SUCCESS"}).encode()
    with Receiver([200]) as receiver:
        delivery = webhooks.deliver(receiver.url, body, secret=SECRET, allow_private=True)

    assert (delivery.status, delivery.delivered) == (200, True)
    [request] = receiver.received
    assert (request["path"], request["body"]) == ("/hooks/thumbnails?client=7", body)
    assert request["headers"]["Content-Type"] == "application/json"
    signature = request["headers"][webhooks.SIGNATURE_HEADER]
    assert hmac.compare_digest(
        signature, "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    )


@pytest.mark.parametrize("status", [500, 404, 302], ids=["server error", "not found", "redirect to metadata"])
def test_any_answer_but_2xx_is_a_failed_delivery_and_redirects_are_not_followed(status):
    with Receiver([status]) as receiver:
        delivery = webhooks.deliver(receiver.url, b"{}", secret=SECRET, allow_private=True)

    assert (delivery.status, delivery.delivered) == (status, False)
    assert len(receiver.received) == 1


def test_a_receiver_that_is_not_there_is_a_failed_delivery_with_the_reason():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there now

    delivery = webhooks.deliver(f"http://127.0.0.1:{port}/", b"{}", secret=SECRET, allow_private=True)

    assert (delivery.status, delivery.delivered) == (None, False)
    assert "ConnectionRefusedError" in delivery.error


@pytest.mark.parametrize(
    "address, public",
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("::ffff:127.0.0.1", False),
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_only_global_unicast_addresses_are_public(address, public):
    assert webhooks.is_public_address(address) is public


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/x", "The callback URL must be an http:// or https:// URL with a host."),
        ("http:///nohost", "The callback URL must be an http:// or https:// URL with a host."),
        ("https://user:secret@example.com/", "The callback URL must not carry a user name or password."),
        ("http://example.com:99999/", "The callback URL is not a valid URL."),
        ("http://example.com/" + "a" * 2000, "The callback URL is longer than 2000 characters."),
        (
            "http://localhost:8000/hook",
            "The callback URL points at a private, loopback or link-local address, which is not allowed.",
        ),
        (
            "http://[::1]/hook",
            "The callback URL points at a private, loopback or link-local address, which is not allowed.",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "The callback URL points at a private, loopback or link-local address, which is not allowed.",
        ),
    ],
)
def test_refused_callback_urls_say_why(url, message):
    with pytest.raises(webhooks.CallbackRefused) as refused:
        webhooks.check_callback_url(url, allow_private=False)
    assert str(refused.value) == message


def test_the_check_is_made_on_the_address_connected_to(monkeypatch):
    """A name that resolved to a public address at upload and to loopback now is never connected to."""
    with Receiver([200]) as receiver:
        port = receiver.server.server_port
        monkeypatch.setattr(
            socket,
            "getaddrinfo",
            lambda host, *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
        )
        delivery = webhooks.deliver(
            f"http://hooks.example.com:{port}/", b"{}", secret=SECRET, allow_private=False
        )

    assert (delivery.status, delivery.delivered) == (None, False)
    assert delivery.error.startswith("The callback URL points at a private")
    assert receiver.received == []


def test_a_name_with_one_private_answer_among_public_ones_is_refused(monkeypatch):
    answers = [("93.184.215.14", 80), ("10.0.0.5", 80)]
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *args, **kwargs: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", sockaddr) for sockaddr in answers
        ],
    )

    with pytest.raises(webhooks.CallbackRefused):
        webhooks.allowed_addresses("mixed.example.com", 80, allow_private=False)


# --- Through the real stack: gunicorn, a Celery worker, the receiver on loopback --------------

WEBHOOK_ENV = {
    "THUMBNAILER_WEBHOOK_SECRET": SECRET,
    "THUMBNAILER_WEBHOOK_ALLOW_PRIVATE": "1",
    "THUMBNAILER_WEBHOOK_RETRY_BASE_SECONDS": "1",
    "THUMBNAILER_WEBHOOK_GIVE_UP_AFTER_SECONDS": "3",  # tries after 0, 1 and 3 s, then gives up
}


def upload_with_callback(web_url: str, callback_url: str) -> str:
    body, content_type = encode_multipart(
        [("hooked.jpg", images.jpeg_bytes((800, 600)))],
        {"callback_url": callback_url},
        content_type="image/jpeg",
    )
    accepted = request("POST", f"{web_url}/api/jobs/", body=body, headers={"Content-Type": content_type})
    assert accepted.status == 202, accepted.text
    return accepted.json["task_id"]


@pytest.mark.slow
def test_a_receiver_failing_twice_gets_the_signed_status_on_the_third_try(private_stack):
    web, _ = private_stack.web(**WEBHOOK_ENV), private_stack.worker(**WEBHOOK_ENV)
    with Receiver([500, 503, 200]) as receiver:
        task_id = upload_with_callback(web.url, receiver.url)
        wait_until(
            lambda: Job.objects.get(id=task_id).webhook_status == "delivered", timeout=30, message="delivery"
        )

    job = Job.objects.get(id=task_id)
    assert (job.status, job.webhook_attempts, job.webhook_last_error) == ("SUCCESS", 3, "")
    bodies = [request["body"] for request in receiver.received]
    assert len(bodies) == 3 and len(set(bodies)) == 1
    status = json.loads(bodies[-1])
    assert (status["task_id"], status["task_status"]) == (task_id, "SUCCESS")
    assert status["results"]["archive_path"] == f"/media/jobs/{task_id}/hooked.zip"
    signature = receiver.received[-1]["headers"][webhooks.SIGNATURE_HEADER]
    assert signature == webhooks.sign(bodies[-1], secret=SECRET)


@pytest.mark.slow
def test_a_receiver_that_never_takes_it_is_given_up_and_the_job_is_untouched(private_stack):
    web, _ = private_stack.web(**WEBHOOK_ENV), private_stack.worker(**WEBHOOK_ENV)
    with Receiver([500] * 10) as receiver:
        task_id = upload_with_callback(web.url, receiver.url)
        wait_until(
            lambda: Job.objects.get(id=task_id).webhook_status == "given_up", timeout=30, message="give-up"
        )

    job = Job.objects.get(id=task_id)
    assert (job.status, job.webhook_attempts, job.webhook_last_error) == ("SUCCESS", 3, "HTTP 500")
    assert len(receiver.received) == 3
    assert get_status(web.url, task_id).json["task_status"] == "SUCCESS"
