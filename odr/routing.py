"""WebSocket routes of every package (rooms arrive with the rooms issue)."""

websocket_urlpatterns: list = []
