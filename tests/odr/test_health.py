"""Liveness and readiness probes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.layers import channel_layers

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def fresh_channel_layers():
    """The layer object is cached per alias; start and end without it."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_when_healthz_is_asked_then_it_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_when_database_and_channel_layer_are_up_then_readyz_answers_ready(client, db, fresh_channel_layers):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready"}
    assert "no-cache" in response["Cache-Control"]


def test_when_the_channel_layer_is_unreachable_then_readyz_answers_503(
    client, db, settings, fresh_channel_layers
):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [CLOSED_PORT_REDIS]},
        }
    }
    channel_layers.backends.clear()

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert len(body["reasons"]) == 1, body
    assert body["reasons"][0].startswith("channel layer")


def test_when_the_database_is_unreachable_then_readyz_answers_503():
    script = (
        "import json, django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/readyz')\n"
        "print(r.status_code)\n"
        "print(r.content.decode())\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL", "ODR_ENV_FILE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="odr.settings",
        DATABASE_URL="postgres://postgres@127.0.0.1:1/test",
        ALLOWED_HOSTS="testserver",
    )

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split("\n", 1)
    assert status == "503", result.stdout
    payload = json.loads(body)
    assert payload["status"] == "unavailable"
    # Only the database is down; the in-memory channel layer still answers.
    assert len(payload["reasons"]) == 1, payload
    assert payload["reasons"][0].startswith("database")
