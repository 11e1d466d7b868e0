"""Nothing let in: each hostile input gets its exact answer and leaves nothing behind (the limits and bad inputs in the README).

Uploads go through the real form (CSRF enforced) and the real API as raw multipart bodies,
so file names reach Django exactly as an attacker would send them. Inputs whose header looks
fine are accepted and then fail in the session's real worker with a readable error.
"""

import html
import io
import json
import random
import re
import socket
import subprocess
import sys

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image

from thumbnailer.models import Job

from .support import images
from .support.http import csrf_token, encode_multipart
from .support.polling import wait_for_job
from .support.processes import PROJECT_ROOT

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The web's header read lets Pillow warn about 90-180 MP canvases; our own cap answers them.
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

FORMATS = "Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image."
NOT_AN_IMAGE = {"code": "not_an_image", "message": f"The file is not an image we can read. {FORMATS}"}
CORRUPT = {"code": "corrupt_image", "message": "The image is damaged or truncated and could not be read."}


def unsupported(kind: str) -> dict:
    return {"code": "unsupported_format", "message": f"{kind} files are not supported. {FORMATS}"}


HTML_PAGE = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"

# (id, client's file name, content, status, the error JSON) -- refused from the header alone.
REFUSED_AT_UPLOAD = [
    ("empty", "empty.jpg", b"", 400, {"code": "empty_file", "message": "The file is empty."}),
    ("random bytes", "noise.jpg", random.Random(4).randbytes(4096), 400, NOT_AN_IMAGE),
    ("HTML named .png", "page.png", HTML_PAGE, 400, NOT_AN_IMAGE),
    (
        "SVG with a script",
        "logo.png",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        400,
        unsupported("SVG"),
    ),
    (
        "EPS (would run Ghostscript)",
        "art.jpg",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n",
        400,
        unsupported("PostScript/EPS"),
    ),
    ("PDF", "scan.jpg", b"%PDF-1.4\n" + b"0" * 200, 400, unsupported("PDF")),
    ("Photoshop", "layers.png", b"8BPS\x00\x01" + bytes(40), 400, unsupported("Photoshop (PSD)")),
    ("JPEG cut inside its header", "cut.jpg", images.jpeg_bytes()[:300], 400, CORRUPT),
    ("zero-width canvas", "flat.png", images.png_declaring(0, 10), 400, NOT_AN_IMAGE),
    (
        "150 MP canvas in a tiny file",
        "big.png",
        images.png_declaring(15000, 10000),
        400,
        {
            "code": "too_many_pixels",
            "message": "The image is 15000x10000 pixels (150 MP); the limit is 100 MP.",
        },
    ),
    # Past twice Pillow's own bomb limit, Pillow refuses before our check can name the size.
    (
        "400 MP canvas in a tiny file",
        "bomb.png",
        images.png_declaring(20000, 20000),
        400,
        {"code": "too_many_pixels", "message": "The image has too many pixels to process."},
    ),
    (
        "BMP declaring 2500 MP",
        "huge.bmp",
        images.bmp_declaring(50000, 50000),
        400,
        {"code": "too_many_pixels", "message": "The image has too many pixels to process."},
    ),
]

# (id, client's file name, content, stored name): the name never leaves jobs/<job-id>/.
NAMES = [
    ("deep ../", "../../../../../../../../../../etc/passwd.jpg", images.jpeg_bytes(), "passwd.jpg"),
    ("Windows path", "..\\..\\Windows\\System32\\evil.jpg", images.jpeg_bytes(), "evil.jpg"),
    ("absolute path, no extension", "/etc/passwd", images.jpeg_bytes(), "passwd.jpg"),
    ("dots and slashes", "....//....//x.jpg", images.jpeg_bytes(), "x.jpg"),
    ("hidden file", ".htaccess", images.jpeg_bytes(), "htaccess.jpg"),
    ("control characters", "evil\x00\x07\x1b[31m\tname.jpg", images.jpeg_bytes(), "evil_31mname.jpg"),
    ("right-to-left override", "photo\u202egpj.exe", images.jpeg_bytes(), "photogpj.jpg"),
    (
        "HTML in the name",
        "<img src=x onerror=alert(1)>.jpg",
        images.jpeg_bytes(),
        "img_src_x_onerror_alert_1.jpg",
    ),
    ("255 characters", "a" * 251 + ".jpg", images.jpeg_bytes(), "a" * 60 + ".jpg"),
    ("300 accented letters", "é" * 300 + ".jpg", images.jpeg_bytes(), "e" * 60 + ".jpg"),
    ("accents and spaces", "Café déjà vu.jpeg", images.jpeg_bytes(), "Cafe_deja_vu.jpg"),
    ("only emoji", "\U0001f5bc\ufe0f\U0001f5bc\ufe0f.png", images.png_bytes(), "image.png"),
    ("double extension", "invoice.pdf.exe.jpg", images.jpeg_bytes(), "invoice_pdf_exe.jpg"),
    ("extension that lies", "photo.png", images.jpeg_bytes(), "photo.jpg"),
    ("a thumbnail's name", "photo_128x128.jpg", images.jpeg_bytes(), "photo_128x128.jpg"),
]


@pytest.fixture(autouse=True)
def _broker(redis_server):
    """Accepted uploads are really queued on the session's Redis."""
    return redis_server


@pytest.fixture
def browser():
    """A client that, like a browser, must send the page's CSRF token with the form."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def nothing_kept(media_root, parked_jobs):
    """Asserts, after the test, that no Job row and no file was added to the test's own media folder."""
    before = stored_files(media_root)
    yield
    assert Job.objects.count() == 0
    assert stored_files(media_root) == before


def stored_files(media_root) -> set[str]:
    return {str(path.relative_to(media_root)) for path in media_root.rglob("*")}


def api_post(client, files: list[tuple[str, bytes]]):
    """POST a raw multipart body, so file names arrive exactly as given (no client-side cleaning)."""
    body, content_type = encode_multipart(files)
    return client.generic("POST", "/api/jobs/", body, content_type=content_type)


def form_post(browser, files: list[tuple[str, bytes]], *, with_token: bool = True):
    """The upload form through the test client, CSRF token included unless told otherwise."""
    token = csrf_token(browser.get("/").content.decode())
    body, content_type = encode_multipart(files, {"csrfmiddlewaretoken": token} if with_token else None)
    return browser.generic("POST", "/", body, content_type=content_type)


def page_messages(response) -> list[str]:
    found = re.findall(r'<li class="message [^"]*">(.*?)</li>', response.content.decode())
    return [html.unescape(text) for text in found]


# --- Refused at the door --------------------------------------------------------------------

refused_at_upload = pytest.mark.parametrize(
    "name, content, status, error",
    [case[1:] for case in REFUSED_AT_UPLOAD],
    ids=[case[0] for case in REFUSED_AT_UPLOAD],
)


@refused_at_upload
def test_api_refuses_bad_input_with_its_exact_answer(client, nothing_kept, name, content, status, error):
    response = api_post(client, [(name, content)])

    assert (response.status_code, response.json()) == (status, {"error": error})


@refused_at_upload
def test_form_refuses_bad_input_with_its_exact_answer(browser, nothing_kept, name, content, status, error):
    response = form_post(browser, [(name, content)])

    assert response.status_code == status
    assert page_messages(response) == [f"{name}: {error['message']}"]


def test_a_form_post_of_many_files_answers_each_one(browser, settings):
    """Good, oversized and bad files in one post: each bad one named with its own reason."""
    settings.THUMBNAILER_MAX_UPLOAD_BYTES = 100_000
    bad = [(name, content) for _, name, content, _, _ in REFUSED_AT_UPLOAD]
    files = [("good.jpg", images.jpeg_bytes()), ("huge.png", images.noisy_png_bytes()), *bad]

    response = form_post(browser, files)

    job = Job.objects.get()
    assert (response.status_code, response["Location"]) == (303, f"/jobs/?ids={job.id}")
    assert job.client_name == "good.jpg"
    assert page_messages(browser.get(response["Location"])) == [
        "huge.png: The file is larger than the 97.7 KiB limit.",
        *(f"{name}: {error['message']}" for _, name, _, _, error in REFUSED_AT_UPLOAD),
    ]


@pytest.mark.parametrize(
    "name, error",
    [
        ("..", {"code": "missing_file", "message": "Send the image in the multipart field 'image_file'."}),
        ("", {"code": "missing_file", "message": "Send the image in the multipart field 'image_file'."}),
        # Django refuses a part whose headers pass 1 KiB before any of our code runs.
        ("a" * 2000 + ".jpg", {"code": "bad_request", "message": "The request could not be understood."}),
    ],
    ids=["only dots", "no name", "name longer than a multipart header may be"],
)
def test_names_that_are_not_names_are_refused(client, nothing_kept, name, error):
    response = api_post(client, [(name, images.jpeg_bytes())])

    assert (response.status_code, response.json()) == (400, {"error": error})


def test_form_post_without_the_csrf_token_is_forbidden(browser, nothing_kept):
    response = form_post(browser, [("photo.jpg", images.jpeg_bytes())], with_token=False)

    assert response.status_code == 403


# Django's DATA_UPLOAD_MAX_NUMBER_FILES (100) stops a request carrying more files.
TOO_MANY_FILES = encode_multipart([(f"{n}.jpg", b"x") for n in range(101)], content_type="image/jpeg")
BAD_REQUEST = {"code": "bad_request", "message": "The request could not be understood."}


@pytest.mark.parametrize(
    "method, path, body, content_type, status, error",
    [
        (
            "GET",
            "/api/jobs/",
            b"",
            "",
            405,
            {"code": "method_not_allowed", "message": "This address only answers POST."},
        ),
        (
            "POST",
            "/task/00000000-0000-0000-0000-000000000000/",
            b"",
            "",
            405,
            {"code": "method_not_allowed", "message": "This address only answers GET or DELETE."},
        ),
        ("POST", "/api/jobs/", b"garbage", "multipart/form-data", 400, BAD_REQUEST),
        (
            "POST",
            "/api/jobs/",
            b"{}",
            "application/json",
            400,
            {"code": "missing_file", "message": "Send the image in the multipart field 'image_file'."},
        ),
        ("POST", "/api/jobs/", *TOO_MANY_FILES, 400, BAD_REQUEST),
    ],
    ids=["GET on the upload API", "POST on a status", "multipart without boundary", "JSON body", "101 files"],
)
def test_api_answers_malformed_requests_in_json(
    client, nothing_kept, method, path, body, content_type, status, error
):
    response = client.generic(method, path, body, content_type=content_type)

    assert (response.status_code, response["Content-Type"], response.json()) == (
        status,
        "application/json",
        {"error": error},
    )


# --- Accepted, but safely -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, stored_name", [case[1:] for case in NAMES], ids=[case[0] for case in NAMES]
)
def test_any_file_name_stays_inside_its_job_folder(
    client, media_root, parked_jobs, name, content, stored_name
):
    """The stored original is the only file added, under jobs/<job-id>/ (no worker writes beside it)."""
    response = api_post(client, [(name, content)])

    assert response.status_code == 202
    job = Job.objects.get(id=response.json()["task_id"])
    assert job.original_path == f"jobs/{job.id}/{stored_name}"
    assert stored_files(media_root) == {"jobs", f"jobs/{job.id}", job.original_path}
    with default_storage.open(job.original_path) as stored:
        assert stored.read() == content


def test_same_names_never_overwrite_each_other(client, celery_worker_process):
    """Two uploads called photo.jpg (and one called like photo.jpg's thumbnail) keep their own files."""
    uploads = [
        ("photo.jpg", images.jpeg_bytes(color=(255, 0, 0))),
        ("photo.jpg", images.jpeg_bytes(color=(0, 0, 255))),
        ("photo_128x128.jpg", images.jpeg_bytes(color=(0, 255, 0))),
    ]
    task_ids = [api_post(client, [upload]).json()["task_id"] for upload in uploads]

    for task_id in task_ids:
        assert wait_for_job(client, task_id)["task_status"] == "SUCCESS"
    jobs = [Job.objects.get(id=task_id) for task_id in task_ids]
    assert [sorted(default_storage.listdir(f"jobs/{job.id}")[1]) for job in jobs] == [
        ["photo.jpg", "photo.zip", "photo_128x128.jpg"],
        ["photo.jpg", "photo.zip", "photo_128x128.jpg"],
        ["photo_128x128.jpg", "photo_128x128.zip", "photo_128x128_128x128.jpg"],
    ]
    for job, (_, original) in zip(jobs, uploads, strict=True):
        with default_storage.open(job.original_path) as stored:
            assert stored.read() == original


def test_page_shows_hostile_file_names_as_text(browser):
    """A file name with HTML in it is escaped on the results page, the upload page and in messages."""
    name = "<img src=x onerror=alert(1)>.jpg"
    response = form_post(
        browser, [(name, images.jpeg_bytes()), (name.replace(".jpg", ".png"), b"not an image")]
    )

    pages = [browser.get(response["Location"]).content.decode(), browser.get("/").content.decode()]
    for page in pages:
        assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in pages[0]
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in pages[1]


# --- Accepted from the header, refused by the decoder ---------------------------------------


@pytest.mark.parametrize(
    "name, content",
    [
        ("cut.jpg", images.truncated_jpeg()),
        ("cut.png", images.png_bytes((600, 400))[:200]),
        ("sliver.png", images.png_declaring(1_000_000, 1)),
    ],
    ids=["truncated JPEG", "truncated PNG", "1000000x1 PNG with no pixel data"],
)
def test_damaged_images_fail_in_the_worker_with_a_readable_error(
    client, celery_worker_process, name, content
):
    response = api_post(client, [(name, content)])
    assert response.status_code == 202
    task_id = response.json()["task_id"]

    assert wait_for_job(client, task_id) == {"task_id": task_id, "task_status": "FAILURE", "error": CORRUPT}
    assert Job.objects.get(id=task_id).deliveries == 1


# --- Served, never as HTML ------------------------------------------------------------------


def jpeg_with_html_inside() -> bytes:
    """A real JPEG whose comment segment is an HTML page: an image/HTML polyglot."""
    return images.encode(Image.new("RGB", (400, 300), (30, 90, 160)), "JPEG", comment=HTML_PAGE)


def test_an_image_html_polyglot_is_never_served_as_html(client, celery_worker_process):
    polyglot = jpeg_with_html_inside()
    assert b"<script>" in polyglot
    response = api_post(client, [("evil.html", polyglot)])
    task_id = response.json()["task_id"]
    status = wait_for_job(client, task_id)
    assert status["task_status"] == "SUCCESS"
    results = status["results"]

    served = {
        url: client.get(url)
        for url in [results["original"]["url"], results["thumbnails"][0]["url"], results["archive_path"]]
    }

    folder = f"/media/jobs/{task_id}"
    assert {url: (response.status_code, response["Content-Type"]) for url, response in served.items()} == {
        f"{folder}/evil.jpg": (200, "image/jpeg"),
        f"{folder}/evil_128x128.jpg": (200, "image/jpeg"),
        f"{folder}/evil.zip": (200, "application/zip"),
    }
    for response in served.values():
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert served[f"{folder}/evil.zip"]["Content-Disposition"] == 'attachment; filename="evil.zip"'
    assert b"".join(served[f"{folder}/evil.jpg"].streaming_content) == polyglot
    assert b"<script>" not in b"".join(served[f"{folder}/evil_128x128.jpg"].streaming_content)


def test_a_file_of_unknown_type_in_storage_is_only_ever_a_download(client, media_root):
    """Even an .html file that reached storage some other way is served as an opaque download."""
    default_storage.save("jobs/planted/page.html", io.BytesIO(HTML_PAGE))

    response = client.get("/media/jobs/planted/page.html")

    assert (response.status_code, response["Content-Type"], response["Content-Disposition"]) == (
        200,
        "application/octet-stream",
        'attachment; filename="page.html"',
    )
    assert response["X-Content-Type-Options"] == "nosniff"


# --- Production settings --------------------------------------------------------------------

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k3r!x9-production-secret-that-is-long-and-random-enough-0f7c2a91d4e6b8",
    "DJANGO_ALLOWED_HOSTS": "thumbs.example.com",
}


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "System check identified no issues (1 silenced).\n",
        "",
    )


def test_production_settings_come_from_the_environment_and_are_strict():
    """DEBUG off, hosts from the environment, secure cookies and a year of HSTS behind the TLS proxy."""
    shown = [
        "DEBUG",
        "ALLOWED_HOSTS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_PROXY_SSL_HEADER",
    ]
    script = f"from django.conf import settings; print([getattr(settings, name) for name in {shown}])"

    result = manage("shell", "-v", "0", "-c", script, env=PRODUCTION_ENV)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "[False, ['thumbs.example.com'], True, True, True, 31536000, True, ('HTTP_X_FORWARDED_PROTO', 'https')]\n"
    )


def test_a_host_not_allowed_gets_a_json_400(client, settings):
    settings.ALLOWED_HOSTS = ["thumbs.example.com"]

    response = client.get("/task/00000000-0000-0000-0000-000000000000/", HTTP_HOST="evil.example.net")

    assert (response.status_code, response.json()) == (400, {"error": BAD_REQUEST})


def test_production_refuses_to_start_without_a_secret_key():
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DJANGO_SECRET_KEY"}

    result = manage("check", env=env)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off."
    )


def test_check_deploy_flags_a_weak_secret_key():
    weak = {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": "short"}

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=weak)

    assert result.returncode == 1
    assert "(security.W009) Your SECRET_KEY has less than 50 characters" in result.stderr


# --- The size cap before the body is read, through a real server ----------------------------


def test_a_declared_huge_body_is_refused_before_it_is_sent(private_stack, nothing_kept):
    """A 1 GiB Content-Length gets 413 at once: the server answers without reading the body."""
    web = private_stack.web()  # on the test's own media folder, which nothing_kept watches
    with socket.create_connection(("127.0.0.1", int(web.url.rsplit(":", 1)[1])), timeout=10) as raw:
        raw.sendall(
            b"POST /api/jobs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 1073741824\r\n\r\n--x\r\n"
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = raw.recv(65536)
            if not chunk:
                break
            reply += chunk

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body) == {
        "error": {"code": "file_too_large", "message": "The file is larger than the 25 MiB limit."}
    }


def test_plain_http_production_does_not_mark_cookies_secure():
    """DJANGO_HTTPS=0 (docker compose on localhost): forms keep working over plain HTTP."""
    shown = [
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
    ]
    script = f"from django.conf import settings; print([getattr(settings, name) for name in {shown}])"

    result = manage("shell", "-v", "0", "-c", script, env={**PRODUCTION_ENV, "DJANGO_HTTPS": "0"})

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "[False, False, False, False, 0]\n"
