"""The health check against the real database, the real Redis and real storage."""

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_healthy_when_database_and_broker_answer(client, redis_server):
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}


def test_unavailable_when_the_broker_is_down(client, settings):
    from celery import current_app

    dead_port_url = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there
    original = current_app.conf.broker_url
    current_app.conf.broker_url = dead_port_url
    try:
        response = client.get("/healthz/")
    finally:
        current_app.conf.broker_url = original

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "broker": "unreachable",
        "storage": "ok",
    }


def test_unavailable_when_storage_cannot_be_written(client, redis_server, settings, tmp_path):
    (tmp_path / "a-file").write_text("media cannot live under a file")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"

    response = client.get("/healthz/")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "broker": "ok",
        "storage": "unreachable",
    }


def test_the_probe_leaves_nothing_behind(client, redis_server, media_root):
    client.get("/healthz/")
    assert list(media_root.iterdir()) == []


def test_a_missing_bucket_answers_503_and_the_log_says_why(client, redis_server, settings, s3_server, caplog):
    """The visitor-facing answer stays short; the operator's log names the bucket and the setting."""
    bucket = "thumbnailer-no-such-bucket"
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_options(bucket)}

    response = client.get("/healthz/")

    assert (response.status_code, response.json()) == (
        503,
        {"status": "unavailable", "database": "ok", "broker": "ok", "storage": "unreachable"},
    )
    assert [record.getMessage() for record in caplog.records if record.name == "thumbnailer.health"] == [
        f"health: Storage: bucket '{bucket}' does not exist at {s3_server.url} (AWS_STORAGE_BUCKET_NAME)"
    ]
