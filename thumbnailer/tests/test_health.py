"""The health check against the real database and the real Redis."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthy_when_database_and_broker_answer(client, redis_server):
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


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
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unreachable"}
