"""Startup checks: each misconfigured service named in words, against real servers on 127.0.0.1.

Storage runs against moto's S3 server (one with authentication enforced for the key tests),
the broker against real redis-servers, the database against real SQLite files and a
PostgreSQL address where nothing listens.
"""

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dj_database_url
import pytest
from celery import current_app
from django.core import checks
from django.db import connections

from thumbnailer import health
from thumbnailer_project.localredis import free_port

from .environment import SESSION_DIR
from .support.http import request
from .support.processes import PROJECT_ROOT, RedisServer, S3Server, process_env


def use_bucket(settings, s3_server: S3Server, bucket: str, **options) -> None:
    """default_storage is `bucket` on s3_server, with `options` changed (as the AWS_* variables would)."""
    storage = s3_server.storage_options(bucket)
    storage["OPTIONS"].update(options)
    settings.STORAGES = {**settings.STORAGES, "default": storage}


def missing_bucket_name() -> str:
    return f"thumbnailer-missing-{uuid.uuid4().hex[:12]}"


# --- Storage ----------------------------------------------------------------------------------


def test_a_bucket_that_does_not_exist_is_named(settings, s3_server):
    bucket = missing_bucket_name()
    use_bucket(settings, s3_server, bucket)

    assert str(health.storage_fault()) == (
        f"Storage: bucket '{bucket}' does not exist at {s3_server.url} (AWS_STORAGE_BUCKET_NAME)"
    )


def test_a_usable_bucket_passes_and_keeps_nothing(settings, s3_server, s3_bucket):
    use_bucket(settings, s3_server, s3_bucket)

    assert health.storage_fault() is None
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0


def test_an_endpoint_with_nothing_listening_is_named(settings, s3_server, s3_bucket):
    nowhere = f"http://127.0.0.1:{free_port()}"
    use_bucket(settings, s3_server, s3_bucket, endpoint_url=nowhere)

    started = time.monotonic()
    fault = health.storage_fault()

    assert str(fault) == f"Storage: cannot reach {nowhere} within 3 s (AWS_S3_ENDPOINT_URL)"
    assert time.monotonic() - started < 3  # refused at once, and not retried


def test_an_endpoint_that_never_answers_is_given_up_within_the_probe_time(settings, s3_server, s3_bucket):
    """A server that takes the connection and then says nothing: the probe stops after 3 s, not 60."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        use_bucket(settings, s3_server, s3_bucket, endpoint_url=endpoint)

        started = time.monotonic()
        fault = health.storage_fault()
        elapsed = time.monotonic() - started

    assert str(fault) == f"Storage: {endpoint} did not answer within 3 s (AWS_S3_ENDPOINT_URL)"
    assert 3 <= elapsed < 6


def test_an_endpoint_that_is_not_a_url_is_named(settings, s3_server, s3_bucket):
    use_bucket(settings, s3_server, s3_bucket, endpoint_url="minio:9000")

    assert str(health.storage_fault()) == "Storage: 'minio:9000' is not a URL (AWS_S3_ENDPOINT_URL)"


@pytest.fixture(scope="module")
def s3_with_keys():
    """A moto S3 server of its own that checks signatures against its IAM users, like a real store.

    moto takes any key until told otherwise: the users, their keys and the bucket are made
    first, then /moto-api/reset-auth turns authentication on for every request after it.
    """
    server = S3Server().start()
    try:
        import boto3  # only the S3 tests need it loaded

        def client(service: str):
            return boto3.client(
                service,
                endpoint_url=server.url,
                region_name=server.REGION,
                aws_access_key_id="setup",
                aws_secret_access_key="setup",
            )

        iam = client("iam")
        keys = {}
        for user, actions in [("thumbnailer", ["s3:*"]), ("reader", ["s3:GetObject", "s3:ListBucket"])]:
            iam.create_user(UserName=user)
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
            iam.put_user_policy(UserName=user, PolicyName="thumbnailer", PolicyDocument=json.dumps(policy))
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        client("s3").create_bucket(Bucket="thumbs")
        turned_on = request(
            "POST",
            f"{server.url}/moto-api/reset-auth",
            body=b"0",
            headers={"Content-Type": "application/json"},
        )
        assert turned_on.status == 200, turned_on.text
        yield server, keys
    finally:
        server.stop()


@pytest.mark.parametrize(
    "key_pair, expected",
    [
        (
            ("AKIAUNKNOWN000000000", "whatever"),
            "Storage: the access key 'AKIAUNKNOWN000000000' is unknown at {url} (AWS_ACCESS_KEY_ID)",
        ),
        (
            ("{thumbnailer}", "not-the-secret"),
            "Storage: the secret key does not match the access key '{thumbnailer}' at {url}"
            " (AWS_SECRET_ACCESS_KEY)",
        ),
        (
            ("{reader}", "{reader_secret}"),
            "Storage: the access key '{reader}' may not write to bucket 'thumbs' at {url}"
            " (the key's permissions, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
        ),
        (("{thumbnailer}", "{thumbnailer_secret}"), "None"),
    ],
    ids=["unknown key", "wrong secret", "key that may only read", "right keys"],
)
def test_refused_keys_are_named(settings, s3_with_keys, key_pair, expected):
    server, keys = s3_with_keys
    names = {
        "url": server.url,
        "thumbnailer": keys["thumbnailer"]["AccessKeyId"],
        "thumbnailer_secret": keys["thumbnailer"]["SecretAccessKey"],
        "reader": keys["reader"]["AccessKeyId"],
        "reader_secret": keys["reader"]["SecretAccessKey"],
    }
    access_key, secret_key = (part.format(**names) for part in key_pair)
    use_bucket(settings, server, "thumbs", access_key=access_key, secret_key=secret_key)

    assert str(health.storage_fault()) == expected.format(**names)


def test_a_media_root_that_cannot_be_written_is_named(settings, tmp_path):
    (tmp_path / "a-file").write_text("media cannot live under a file")
    settings.MEDIA_ROOT = str(tmp_path / "a-file" / "media")

    assert str(health.storage_fault()) == (
        f"Storage: cannot write under {tmp_path}/a-file/media: Not a directory (MEDIA_ROOT)"
    )


# --- Database ---------------------------------------------------------------------------------


def database_from_url(url: str) -> dict:
    """A DATABASES entry as settings builds it from DATABASE_URL, with Django's defaults filled in."""
    return connections.configure_settings({"default": dj_database_url.parse(url)})["default"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, expected",
    [
        (
            "postgres://thumbnailer:secret@127.0.0.1:{port}/thumbnailer",
            "Database: cannot reach PostgreSQL at 127.0.0.1:{port} within 3 s (DATABASE_URL)",
        ),
        (
            "sqlite:///{folder}/missing/db.sqlite3",
            "Database: cannot open the SQLite file {folder}/missing/db.sqlite3: unable to open database file"
            " (DATABASE_URL)",
        ),
        ("sqlite:///{folder}/db.sqlite3", "None"),
    ],
    ids=["postgres with nothing listening", "sqlite in a missing folder", "sqlite that opens"],
)
def test_a_database_that_cannot_be_opened_is_named(tmp_path, url, expected):
    names = {"port": free_port(), "folder": tmp_path}

    assert str(health.database_fault(database_from_url(url.format(**names)))) == expected.format(**names)


@pytest.mark.django_db
def test_the_test_database_passes():
    assert health.database_fault() is None


# --- Broker -----------------------------------------------------------------------------------


@pytest.fixture
def broker_url():
    """Point the Celery app at another broker URL for one test (as REDIS_URL would)."""
    original = current_app.conf.broker_url
    yield lambda url: setattr(current_app.conf, "broker_url", url)
    current_app.conf.broker_url = original


def test_a_broker_with_nothing_listening_is_named(broker_url):
    port = free_port()
    broker_url(f"redis://127.0.0.1:{port}/0")

    assert str(health.broker_fault()) == (
        f"Broker: cannot reach redis://127.0.0.1:{port}/0 within 3 s (REDIS_URL)"
    )


@pytest.fixture(scope="module")
def redis_with_password():
    """A redis-server of its own that asks for the password 'right-password'."""
    server = RedisServer(
        f"redis://127.0.0.1:{free_port()}/0",
        workdir=Path(SESSION_DIR) / f"redis-password-{time.monotonic_ns()}",
    )
    server.start()
    try:
        server.client().config_set("requirepass", "right-password")
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    "password, expected",
    [
        ("", "Broker: redis://127.0.0.1:{port}/0 requires a password (REDIS_URL)"),
        (":wrong-password@", "Broker: the password was refused by redis://127.0.0.1:{port}/0 (REDIS_URL)"),
        (":right-password@", "None"),
    ],
    ids=["no password", "wrong password", "right password"],
)
def test_a_refused_broker_password_is_named_and_never_shown(
    broker_url, redis_with_password, password, expected
):
    broker_url(f"redis://{password}127.0.0.1:{redis_with_password.port}/0")

    assert str(health.broker_fault()) == expected.format(port=redis_with_password.port)


# --- Through Django's check framework, and in real processes -----------------------------------


@pytest.mark.django_db
def test_the_check_reaches_out_only_when_given_a_database(settings, s3_server, redis_server):
    """`check --deploy` alone stays offline; with `--database` it names the missing bucket."""
    bucket = missing_bucket_name()
    use_bucket(settings, s3_server, bucket)

    def run(**options) -> list[str]:
        return [str(message) for message in checks.run_checks(tags=["thumbnailer"], **options)]

    assert run(include_deployment_checks=True) == []
    assert run(databases=["default"]) == []  # not a deploy run: migrate and runserver stay offline
    assert run(include_deployment_checks=True, databases=["default"]) == [
        f"Storage: (thumbnailer.E003) bucket '{bucket}' does not exist at {s3_server.url} (AWS_STORAGE_BUCKET_NAME)"
    ]


@pytest.mark.django_db
def test_manage_py_check_names_a_missing_bucket(s3_server, redis_server):
    bucket = missing_bucket_name()

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--database", "default", "--tag", "thumbnailer"],
        cwd=PROJECT_ROOT,
        env=process_env(**s3_server.env(bucket)),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "SystemCheckError: System check identified some issues:\n\nERRORS:\n"
        f"Storage: (thumbnailer.E003) bucket '{bucket}' does not exist at {s3_server.url}"
        " (AWS_STORAGE_BUCKET_NAME)\n\nSystem check identified 1 issue (0 silenced).\n",
    )


@pytest.mark.slow
def test_web_and_worker_say_so_when_they_start_and_start_anyway(private_stack, s3_server):
    bucket = missing_bucket_name()
    said = (
        f"Storage: bucket '{bucket}' does not exist at {s3_server.url} (AWS_STORAGE_BUCKET_NAME)."
        " Starting anyway; /healthz/ answers 503 until it is fixed."
    )

    web = private_stack.web(**s3_server.env(bucket))  # answers its upload page
    worker = private_stack.worker(concurrency=1, **s3_server.env(bucket))  # logged "ready."

    web.wait_for_log(f"Startup check (web): {said}", timeout=10)
    worker.wait_for_log(f"Startup check (worker): {said}", timeout=10)
    for process in (web, worker):
        assert "Database:" not in process.log() and "Broker:" not in process.log()
    assert request("GET", f"{web.url}/healthz/").json == {
        "status": "unavailable",
        "database": "ok",
        "broker": "ok",
        "storage": "unreachable",
    }
