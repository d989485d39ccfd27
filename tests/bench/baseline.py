"""The benchmark's baseline: a bare Channels broadcast consumer — no
authentication, no storage, no encryption — served by the same Daphne, on
the same Redis channel layer configuration, behind the same nginx. Whatever
our room consumer costs beyond this is our overhead (docs/performance.md).

`python -m odr.server tests.bench.baseline:application`; clients use /ws/baseline/<room>/
and send the room protocol's `message.send` frames; every socket in the room
gets `{"type": "message", "client_id", "body"}` back.
"""

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odr.settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402


class BroadcastConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.group = "baseline." + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data)
        if frame.get("type") != "message.send":
            return
        await self.channel_layer.group_send(
            self.group,
            {"type": "relay", "frame": {"type": "message", "client_id": frame["client_id"], "body": frame["body"]}},
        )

    async def relay(self, message):
        await self.send(text_data=json.dumps(message["frame"]))


application = ProtocolTypeRouter(
    {"websocket": URLRouter([re_path(r"^ws/baseline/(?P<room>[\w-]+)/$", BroadcastConsumer.as_asgi())])}
)
