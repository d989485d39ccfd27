"""Liveness and readiness probes."""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

CHANNEL_LAYER_TIMEOUT = 2.0
logger = logging.getLogger(__name__)


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readyz: database check failed", exc_info=True)
        return f"database: {exc.__class__.__name__}"
    return None


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("healthcheck.")
    await layer.send(channel, {"type": "health.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "health.ping":
        raise RuntimeError("unexpected message")


def _check_channel_layer() -> str | None:
    async def probe():
        await asyncio.wait_for(_layer_round_trip(), CHANNEL_LAYER_TIMEOUT)

    try:
        async_to_sync(probe)()
    except Exception as exc:  # noqa: BLE001
        # Details go to the log, not to whoever asks the probe.
        logger.warning("readyz: channel layer check failed", exc_info=True)
        return f"channel layer: {exc.__class__.__name__}"
    return None


@never_cache
def readyz(request):
    problems = [p for p in (_check_database(), _check_channel_layer()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "reasons": problems}, status=503)
    return JsonResponse({"status": "ready"})
