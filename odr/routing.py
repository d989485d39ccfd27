"""WebSocket routes of every package (wired here, as odr/urls.py wires the pages)."""

from sessions.routing import websocket_urlpatterns as mediation_routes

websocket_urlpatterns: list = [*mediation_routes]
