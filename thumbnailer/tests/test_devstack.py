"""`make run` (scripts/devstack.py) runs the product as people use it: debug off, its own error pages."""

import http.client
import json
import os
import stat
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from scripts import devstack

from .support.processes import PROJECT_ROOT, start_web


def test_debug_is_off_unless_asked_for(tmp_path):
    env = devstack.run_environment({"PATH": "/usr/bin"}, run_dir=tmp_path)

    assert (env["DJANGO_DEBUG"], env["DJANGO_HTTPS"]) == ("0", "0")
    assert len(env["DJANGO_SECRET_KEY"]) >= 50


def test_what_the_caller_sets_wins(tmp_path):
    caller = {"DJANGO_DEBUG": "1", "DJANGO_HTTPS": "1", "DJANGO_SECRET_KEY": "from-the-caller"}

    env = devstack.run_environment(caller, run_dir=tmp_path)

    assert {key: env[key] for key in caller} == caller
    assert not (tmp_path / "secret_key").exists()


def test_the_secret_key_is_made_once_and_kept_private(tmp_path):
    first = devstack.run_environment({}, run_dir=tmp_path)["DJANGO_SECRET_KEY"]
    second = devstack.run_environment({}, run_dir=tmp_path)["DJANGO_SECRET_KEY"]

    assert first == second
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def fetch(base_url: str, path: str) -> tuple[int, str, str]:
    """GET the path exactly as written (no client-side clean-up of `..`)."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.headers["Content-Type"], response.read().decode()
    finally:
        connection.close()


@pytest.fixture
def run_stack_web(redis_server, django_db_setup, tmp_path):
    """gunicorn with the environment `make run` gives it, static files collected as `make run` does."""
    env = devstack.run_environment({}, run_dir=tmp_path)
    env = {key: env[key] for key in ("DJANGO_DEBUG", "DJANGO_HTTPS", "DJANGO_SECRET_KEY")}
    env["DJANGO_STATIC_ROOT"] = str(tmp_path / "static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        check=True,
    )
    web = start_web("run-web", **env)
    yield web
    web.stop()


@pytest.mark.slow
def test_make_run_answers_errors_with_the_products_own_pages(run_stack_web):
    page_status, page_type, page = fetch(run_stack_web.url, "/no/such/page/")
    json_status, json_type, body = fetch(run_stack_web.url, "/task/../../etc/passwd/")
    static_status, static_type, _ = fetch(run_stack_web.url, "/static/thumbnailer/style.css")

    assert (page_status, page_type) == (404, "text/html; charset=utf-8")
    assert "There is nothing at this address." in page
    assert "URLconf" not in page
    assert (json_status, json_type, json.loads(body)) == (
        404,
        "application/json",
        {"error": {"code": "not_found", "message": "There is nothing at this address."}},
    )
    assert (static_status, static_type) == (200, 'text/css; charset="utf-8"')
