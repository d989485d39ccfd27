"""The room WebSocket: ../shared/contracts/realtime.md, extended in docs/protocol.md.

Thin by design: connect → authorise → join groups → accept; every client
frame is validated here and handed to a service in `sessions.services.rooms`,
which re-checks the user's standing in the room from the database each time.
Live frames from the channel layer pass through `_deliver`, which keeps this
socket's events in `seq` order without gaps (filling any gap from the
database) and drops what the socket already has.
"""

import asyncio
import json
import logging
import time
import uuid
import weakref

from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache
from django.dispatch import receiver
from django.utils import translation
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from odr import safejson
from odr.audit import Origin
from odr.lifecycle import server_draining
from sessions import events
from sessions.models import Room
from sessions.services import rooms
from sessions.services.rooms import RoomGone, RoomRefused

log = logging.getLogger(__name__)

# Moderation frames: type → (service, keyword arguments taken from the frame).
MODERATION = {
    "session.start": (rooms.session_start, ()),
    "session.end": (rooms.session_end, ()),
    "lobby.admit": (rooms.lobby_admit, ("participant_id",)),
    "lobby.decline": (rooms.lobby_decline, ("participant_id",)),
    "participant.mute": (rooms.participant_mute, ("participant_id",)),
    "participant.unmute": (rooms.participant_mute, ("participant_id",)),
    "participant.remove": (rooms.participant_remove, ("participant_id",)),
    "room.lock": (rooms.room_lock, ()),
    "room.unlock": (rooms.room_lock, ()),
    "message.redact": (rooms.message_redact, ("seq",)),
    "caucus.open": (rooms.caucus_open, ("party_id",)),
    "caucus.close": (rooms.caucus_close, ()),
}
_FIELD_OF = {"participant_id": "participant", "party_id": "party", "seq": "seq"}
_FIXED = {
    "participant.mute": {"muted": True},
    "participant.unmute": {"muted": False},
    "room.lock": {"locked": True},
    "room.unlock": {"locked": False},
}


def _sequence_number(value, *, minimum: int) -> bool:
    """A `seq` a client may name: a whole number (not a bool) that a
    JavaScript client holds exactly, so the database is never asked beyond it."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= rooms.MAX_SEQ


def database_sync_to_async(function):
    """Channels' database_sync_to_async, on a pool of threads instead of the
    one thread every consumer of the process would otherwise queue on: one
    room's database round trips no longer hold up every other room's. A
    consumer still handles its own frames one at a time, so each socket's
    order is kept; rooms are serialised by their row lock (docs/protocol.md)."""
    return DatabaseSyncToAsync(function, thread_sensitive=False)


# The channel layer was lost: reconnect and resume (docs/protocol.md). Daphne
# sends no 1012 ("service restart"): applications may use 1000 and 3000-4999.
CLOSE_SERVICE_RESTART = 4503

# This process's open room sockets (closed all at once if Redis is lost, or
# when the server drains).
_OPEN: "weakref.WeakSet[RoomConsumer]" = weakref.WeakSet()
# Room sockets the drain has closed whose presence is not cleared yet.
_DRAINING: "weakref.WeakSet[RoomConsumer]" = weakref.WeakSet()


@receiver(server_draining)
def close_room_sockets(sender, **kwargs) -> int:
    """The server is stopping (odr/server.py): every room socket of this
    process closes with 4503, as when Redis is lost, so that its client
    reconnects to another instance and resumes; the disconnect handler then
    clears the socket's presence as for any close. Returns how many are
    still open or clearing their presence: the server waits for none."""
    for consumer in list(_OPEN):
        if not consumer.closed:
            _DRAINING.add(consumer)
            asyncio.ensure_future(consumer._restart())
    return len(_DRAINING)


class RoomConsumer(AsyncWebsocketConsumer):
    room: Room | None = None
    admitted = False
    is_mediator = False
    participant_id = ""
    last_seq: int | None = None  # None until the client's `resume`
    pending_resume: int | None = None
    closed = False  # this side sent the close: nothing more goes out

    # --- The channel layer going away -------------------------------------------------

    async def __call__(self, scope, receive, send):
        """Redis restarting (or failing over to a replica) forgets every group,
        and with them every socket's subscription; only the one consumer whose
        read is in flight notices (channels_redis reads for the whole process).
        So when any consumer of this process meets the failure, every room
        socket of the process closes with 4503 ("reconnect"): the
        clients reconnect — through nginx, to any instance — re-subscribe, and
        resume from the database (contract guarantee 3)."""
        try:
            await super().__call__(scope, receive, send)
        except RedisError as exc:
            log.warning("channel layer unreachable (%s): room sockets of this process close with 4503", exc)
            _OPEN.discard(self)
            for consumer in list(_OPEN):
                asyncio.ensure_future(consumer._restart())
            await self._forget_presence()
            try:
                await send({"type": "websocket.close", "code": CLOSE_SERVICE_RESTART})
            except Exception:
                pass  # the client has gone too
        except Exception:
            # A bug must not leave a ghost: the others would see this user
            # online until the presence timeout. Daphne then closes with 1011.
            await self.disconnect(code=1011)
            raise

    async def _restart(self):
        _OPEN.discard(self)
        try:
            await self.close(code=CLOSE_SERVICE_RESTART)
        except Exception:
            log.exception("room socket %s did not close", self.channel_name)

    async def websocket_receive(self, message):
        if self.closed:
            # Closed by this side (4503, a refusal): frames still queued are
            # not worth a database round trip each before the disconnect
            # handler's turn; the client resends what was not acked after it
            # reconnects (message.send is idempotent on client_id).
            return
        await super().websocket_receive(message)

    async def _forget_presence(self):
        try:
            if self.room is not None:
                await database_sync_to_async(rooms.room_leave)(channel_name=self.channel_name)
        except Exception:
            log.exception("presence of %s not cleared", self.channel_name)
        finally:
            _DRAINING.discard(self)

    # --- Connecting -------------------------------------------------------------

    async def connect(self):
        self.groups_joined: list[str] = []
        self.window_start = time.monotonic()
        self.frames_in_window = 0
        self.refusals_in_window = 0
        # Accept first, so that every refusal carries the contract's close code.
        await self.accept()
        _OPEN.add(self)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=rooms.CLOSE_NOT_LOGGED_IN)
            return
        self.user = user
        self.language = getattr(user, "preferred_language", None) or settings.LANGUAGE_CODE
        try:
            room_id = uuid.UUID(self.scope["url_route"]["kwargs"]["room_id"])
        except ValueError:
            await self.close(code=rooms.CLOSE_NO_SUCH_ROOM)
            return
        try:
            entry = await self._enter(room_id)
        except RoomGone as gone:
            self.room = None  # a refusal is final: later frames are ignored
            await self.close(code=gone.close_code)
            return
        self.participant_id = str(entry.standing.participant.public_id)
        self.is_mediator = entry.standing.is_mediator
        await self._join(events.user_group(user.pk))
        await self._join(events.case_group(self.room.case))
        if self.is_mediator:
            await self._join(self.room.moderators_group)
        if entry.standing.admitted:
            await self._join(self.room.group)
            self.admitted = True
        else:
            await self._join(self.room.lobby_group)
        await self._send_frame(self._welcome(entry))
        if self.admitted:
            await self._send_presence()
        if not self.admitted:
            await self._send_frame({"type": "lobby.waiting", "session_open": entry.session_open})
        if self.is_mediator:
            await self._send_members()

    @database_sync_to_async
    def _enter(self, room_id):
        room = Room.objects.select_related("case", "party").filter(public_id=room_id).first()
        if room is None:
            # Same answer as a room of someone else: existence is not revealed.
            raise RoomGone(rooms.CLOSE_FORBIDDEN)
        self.room = room
        return rooms.room_enter(room=room, user=self.user, channel_name=self.channel_name)

    def _welcome(self, entry) -> dict:
        room = self.room
        return {
            "type": "welcome",
            "room": {
                "id": str(room.public_id),
                "kind": room.kind,
                "locked": room.locked,
                "open": room.is_open,
                "last_seq": room.last_seq,
                "session_open": entry.session_open,
            },
            "you": {
                "id": self.participant_id,
                "role": entry.standing.participant.role,
                "admitted": entry.standing.admitted,
                "muted": entry.standing.muted,
                "mediator": self.is_mediator,
            },
            "limits": {
                "message_chars": settings.ODR_MESSAGE_MAX_CHARS,
                "frame_bytes": settings.ODR_WS_MAX_FRAME_BYTES,
            },
        }

    async def _join(self, group: str):
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def disconnect(self, code):
        _OPEN.discard(self)
        try:
            for group in getattr(self, "groups_joined", []):
                await self.channel_layer.group_discard(group, self.channel_name)
        except RedisError as exc:
            log.info("groups of %s not left: the channel layer is unreachable (%s)", self.channel_name, exc)
        await self._forget_presence()

    # --- Client frames -----------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.room is None:
            return
        with translation.override(self.language):
            if await self._flooding():
                return
            if text_data is None:
                await self._error("bad_request", _("Frames must be JSON text."))
                return
            try:
                frame = safejson.loads(text_data, max_bytes=settings.ODR_WS_MAX_FRAME_BYTES)
            except safejson.JSONRefused as refused:
                # The answer never echoes the frame: it may hold what cannot be encoded.
                if refused.code == "too_large":
                    await self._error("too_large", _("The frame is too large."))
                else:
                    await self._error("bad_request", refused.detail)
                return
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                await self._error("bad_request", _("A frame is a JSON object with a “type”."))
                return
            try:
                await self._dispatch(frame)
            except RoomGone as gone:
                await self.close(code=gone.close_code)
            except RoomRefused as refused:
                await self._refused(refused, frame)
            except Exception:
                log.exception("room frame %r failed", frame.get("type"))
                await self._error(
                    "server_error", _("Something went wrong on our side; try again."), frame=frame
                )

    async def _flooding(self) -> bool:
        """Too many frames on this connection in the window: `rate_limited`."""
        now = time.monotonic()
        if now - self.window_start > settings.ODR_CHAT_RATE_SECONDS:
            self.window_start, self.frames_in_window, self.refusals_in_window = now, 0, 0
        self.frames_in_window += 1
        if self.frames_in_window <= settings.ODR_WS_FRAME_RATE_COUNT:
            return False
        await self._rate_limited()
        return True

    async def _rate_limited(self, frame: dict | None = None):
        self.refusals_in_window += 1
        if self.refusals_in_window > settings.ODR_WS_FLOOD_CLOSE_AFTER:
            await self.close(code=rooms.CLOSE_RATE_LIMITED)
            return
        await self._error("rate_limited", _("Slow down: too many messages."), frame=frame)

    async def _dispatch(self, frame: dict):
        kind = frame["type"]
        if kind == "resume":
            await self._resume(frame)
        elif kind == "message.send":
            await self._message_send(frame)
        elif kind == "typing":
            await self._typing(frame)
        elif kind == "history":
            await self._history(frame)
        elif kind == "ping":
            current = await database_sync_to_async(self._recheck)(seen=True)
            # Renew the subscriptions: a group forgets members after
            # channels_redis's group_expiry (a day), and a socket may be open longer.
            for group in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
            pong = {"type": "pong"}
            if current.admitted:
                pong["last_seq"] = self.room.last_seq
            await self._send_frame(pong)
        elif kind in MODERATION:
            await self._moderate(kind, frame)
        else:
            raise RoomRefused(_("Unknown frame type “%(type)s”.") % {"type": kind[:40]}, code="bad_request")

    def _recheck(self, *, seen: bool = False) -> rooms.Standing:
        """Every frame: the login is still valid (not logged out, not expired,
        password not changed since) and the user still stands in the room."""
        self._recheck_login()
        if seen:
            rooms.connection_seen(channel_name=self.channel_name)
        return rooms.standing(room=self.room, user=self.user)

    def _recheck_login(self) -> None:
        session: SessionBase | None = self.scope.get("session")
        if session is None or not session.session_key:
            raise RoomGone(rooms.CLOSE_NOT_LOGGED_IN)
        stored = session.__class__(session.session_key)  # re-read; expired reads as empty
        self.user.refresh_from_db(fields=["is_active", "password"])
        if (
            not self.user.is_active
            or stored.get(SESSION_KEY) != str(self.user.pk)
            or not constant_time_compare(stored.get(HASH_SESSION_KEY, ""), self.user.get_session_auth_hash())
        ):
            raise RoomGone(rooms.CLOSE_NOT_LOGGED_IN)

    async def _resume(self, frame: dict):
        after_seq = frame.get("after_seq")
        if not _sequence_number(after_seq, minimum=0):
            raise RoomRefused(_("“after_seq” must be a whole number, 0 or more."), code="bad_request")
        current = await database_sync_to_async(self._recheck)()
        if not current.admitted:
            # Replayed on admission; nothing of the room reaches the lobby.
            self.pending_resume = after_seq
            return
        self.last_seq = after_seq
        await self._catch_up()

    async def _catch_up(self, until: int | None = None):
        """Send every stored event after `last_seq` (up to `until`), in order."""
        while True:
            batch = await database_sync_to_async(self._events_after)(self.last_seq)
            if until is not None:
                batch = [f for f in batch if f["seq"] < until]
            for frame in batch:
                await self._send_frame(frame)
                self.last_seq = frame["seq"]
            if len(batch) < 500 or (until is not None and self.last_seq >= until - 1):
                return

    def _events_after(self, after_seq: int) -> list[dict]:
        return [events.event_frame(e) for e in rooms.events_after(room=self.room, after_seq=after_seq)]

    async def _history(self, frame: dict):
        before_seq = frame.get("before_seq")
        if not _sequence_number(before_seq, minimum=1):
            raise RoomRefused(_("“before_seq” must be a whole number, 1 or more."), code="bad_request")
        frames = await database_sync_to_async(self._history_frames)(before_seq)
        await self._send_frame(
            {"type": "history", "before_seq": before_seq, "events": frames, "complete": not frames or frames[0]["seq"] == 1}
        )

    def _history_frames(self, before_seq: int) -> list[dict]:
        current = self._recheck()
        if not current.admitted:
            raise RoomRefused(_("Wait until the mediator admits you."), code="forbidden")
        older = rooms.events_before(room=self.room, before_seq=before_seq, limit=settings.ODR_HISTORY_PAGE)
        return [events.event_frame(e) for e in older]

    async def _message_send(self, frame: dict):
        client_id = frame.get("client_id")
        body = frame.get("body")
        if not isinstance(client_id, str) or not isinstance(body, str):
            raise RoomRefused(_("“message.send” needs “client_id” and “body” as text."), code="bad_request")
        event, _created = await database_sync_to_async(self._post)(client_id, body)
        await self._send_frame({"type": "ack", "client_id": client_id, "seq": event.seq, "id": str(event.public_id)})

    def _post(self, client_id: str, body: str):
        # The login only: message_post re-checks the user's standing in the
        # room itself, under the room's lock.
        self._recheck_login()
        if not self._within_chat_rate():
            raise RoomRefused(_("Slow down: too many messages."), code="rate_limited")
        return rooms.message_post(room=self.room, user=self.user, client_id=client_id, body=body)

    def _within_chat_rate(self) -> bool:
        """Messages per user per room, across processes (the shared cache).
        While the cache (Redis) is unreachable the limit is not applied — a
        mediation must not stop because a counter is — and the per-socket
        frame limit (`_flooding`) still holds."""
        window = settings.ODR_CHAT_RATE_SECONDS
        key = f"chat-rate:{self.room.pk}:{self.user.pk}:{int(time.time() // window)}"
        try:
            cache.add(key, 0, timeout=window * 2)
            try:
                count = cache.incr(key)
            except ValueError:
                cache.set(key, 1, timeout=window * 2)
                count = 1
        except RedisError as exc:
            log.warning("chat rate limit not applied: the cache is unreachable (%s)", exc)
            return True
        return count <= settings.ODR_CHAT_RATE_COUNT

    async def _typing(self, frame: dict):
        active = frame.get("active")
        if not isinstance(active, bool):
            raise RoomRefused(_("“active” must be true or false."), code="bad_request")
        await database_sync_to_async(self._typing_check_and_send)(active)

    def _typing_check_and_send(self, active: bool):
        current = self._recheck()
        rooms.check_may_speak(room=self.room, user=self.user)
        events.send_typing(self.room, current.participant, active)

    async def _moderate(self, kind: str, frame: dict):
        service, fields = MODERATION[kind]
        arguments = dict(_FIXED.get(kind, {}))
        for name in fields:
            if _FIELD_OF[name] not in frame:
                raise RoomRefused(
                    _("“%(type)s” needs “%(field)s”.") % {"type": kind, "field": _FIELD_OF[name]},
                    code="bad_request",
                )
            arguments[name] = frame[_FIELD_OF[name]]
        result = await database_sync_to_async(self._run_moderation)(service, arguments)
        if kind == "caucus.open":
            await self._send_frame({"type": "caucus", "room_id": str(result.public_id), "open": True})

    def _run_moderation(self, service, arguments: dict):
        self._recheck()
        origin = Origin(ip=(self.scope.get("client") or [None])[0], user_agent=self._user_agent())
        return service(room=self.room, user=self.user, origin=origin, **arguments)

    def _user_agent(self) -> str:
        for name, value in self.scope.get("headers", []):
            if name == b"user-agent":
                return value.decode("latin-1")[:512]
        return ""

    async def _refused(self, refused: RoomRefused, frame: dict):
        if refused.code == "rate_limited":
            await self._rate_limited(frame)
            return
        await self._error(refused.code or "bad_request", " ".join(refused.messages), frame=frame)

    async def _error(self, code: str, detail: str, *, frame: dict | None = None):
        payload = {"type": "error", "code": code, "detail": str(detail)}
        if frame is not None:
            payload["for"] = str(frame.get("type"))[:40]
            if frame.get("type") == "message.send" and isinstance(frame.get("client_id"), str):
                payload["client_id"] = frame["client_id"][:64]
        await self._send_frame(payload)

    async def _send_frame(self, frame: dict):
        if self.closed:
            return  # closed by us (a refusal, 4503) while this frame was on its way: the client resumes
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def close(self, code=None, reason=None):
        self.closed = True
        await super().close(code=code, reason=reason)

    async def _send_presence(self):
        """Who is here already: the room's broadcasts went out before this socket joined."""
        online = await database_sync_to_async(rooms.online_participants)(self.room)
        await self._send_frame({"type": "presence", "online": online})

    async def _send_members(self):
        members = await database_sync_to_async(rooms.members_state)(self.room)
        await self._send_frame({"type": "members", "members": members})

    # --- Frames from the channel layer -----------------------------------------------

    async def room_sequenced(self, message):
        if not self.admitted or self.last_seq is None:
            return  # the lobby gets no room content; before `resume`, the database has it
        seq = message["seq"]
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            await self._catch_up(until=seq)
        if seq <= self.last_seq:
            return
        await self._send_frame(message["frame"])
        self.last_seq = seq

    async def room_presence(self, message):
        if self.admitted:
            await self._send_frame({"type": "presence", "online": message["online"]})

    async def room_typing(self, message):
        if self.admitted and message["participant"] != self.participant_id:
            await self._send_frame({"type": "typing", "participant": message["participant"], "active": message["active"]})

    async def room_members_changed(self, message):
        if self.is_mediator:
            await self._send_members()

    async def room_close(self, message):
        await self.close(code=message["code"])

    async def user_kick(self, message):
        if message["room"] is None or (self.room is not None and message["room"] == self.room.public_id.hex):
            await self.close(code=message["code"])

    async def user_admission(self, message):
        if self.room is None or message["room"] != self.room.public_id.hex or self.admitted:
            return
        if message["status"] == "admitted":
            await self._join(self.room.group)
            self.admitted = True
            await self._send_frame({"type": "lobby.admitted"})
            await self._send_presence()
            if self.pending_resume is not None:
                self.last_seq, self.pending_resume = self.pending_resume, None
                await self._catch_up()
        else:
            await self._send_frame({"type": "lobby.declined"})
            await self.close(code=rooms.CLOSE_FORBIDDEN)

    async def user_caucus(self, message):
        await self._send_frame(message["frame"])
