"""Room frames (docs/protocol.md) and the only functions that send them.

Every `send_*` function names who receives the frame and queues it with
`transaction.on_commit`: nothing reaches a socket before the change it
announces is stored (durable before visible). The channel layer is only the
live fan-out; the database is the record, and clients `resume` from it.
"""

import datetime
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.urls import reverse

from sessions.models import EventKind, Participant, Room, RoomEvent
from sessions.services import confidentiality


def iso(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def participant_ref(participant: Participant | None) -> dict | None:
    if participant is None:
        return None
    return {
        "id": str(participant.public_id),
        "display_name": participant.user.display_name,
        "role": participant.role,
    }


def event_frame(event: RoomEvent) -> dict:
    """The frame a room event is sent as, live or on `resume`."""
    if event.kind == EventKind.MESSAGE:
        frame = {
            "type": "message",
            "seq": event.seq,
            "id": str(event.public_id),
            "client_id": str(event.client_id) if event.client_id else None,
            "author": participant_ref(event.actor),
            "body": confidentiality.message_text(event),
            "sent_at": iso(event.at),
        }
        if event.redacted_at is not None:
            frame["body"] = ""
            frame["redacted"] = {"by": participant_ref(event.redacted_by), "at": iso(event.redacted_at)}
        return frame
    frame = {
        "type": "event",
        "seq": event.seq,
        "kind": event.kind,
        "actor": participant_ref(event.actor),
        "subject": participant_ref(event.subject),
        "at": iso(event.at),
    }
    if event.target_seq is not None:
        frame["target_seq"] = event.target_seq
    if event.kind == EventKind.DOCUMENT and event.document is not None:
        document = event.document
        if not hasattr(document, "name"):
            confidentiality.reveal_events([event], event.room.case)
        frame["document"] = {
            "id": str(document.public_id),
            "name": document.name,
            "size": document.size,
            "content_type": document.content_type,
            "url": reverse("mediation:room_document", args=[event.room.public_id, document.public_id]),
        }
    return frame


def _send(group: str, message: dict) -> None:
    # robust: a channel layer that is down (Redis restarting) is logged, not
    # raised — the change is already stored, and the sockets that miss the
    # frame are closed by their consumer and resume from the database.
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(group, message), robust=True)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def case_group(case) -> str:
    return f"case.{case.public_id.hex}"


def send_room_event(event: RoomEvent) -> None:
    """To every socket admitted to the event's room."""
    _send(event.room.group, {"type": "room.sequenced", "seq": event.seq, "frame": event_frame(event)})


def send_members_changed(room: Room) -> None:
    """To the mediator's sockets in the room: the lobby or a member's state changed."""
    _send(room.moderators_group, {"type": "room.members_changed"})


def send_presence(room: Room, online: Callable[[], list[str]]) -> None:
    """To every socket admitted to the room: who is online, read after the commit."""
    transaction.on_commit(
        lambda: async_to_sync(get_channel_layer().group_send)(
            room.group, {"type": "room.presence", "online": online()}
        ),
        robust=True,
    )


def send_typing(room: Room, participant: Participant, active: bool) -> None:
    """To every socket admitted to the room (the sender's own are skipped)."""
    async_to_sync(get_channel_layer().group_send)(
        room.group, {"type": "room.typing", "participant": str(participant.public_id), "active": active}
    )


def send_admission(room: Room, participant: Participant, status: str) -> None:
    """To the participant's sockets: their lobby wait in this room is over."""
    _send(
        user_group(participant.user_id),
        {"type": "user.admission", "room": room.public_id.hex, "status": status},
    )


def send_kick(room: Room, participant: Participant, code: int) -> None:
    """To the participant's sockets in this room: close with `code`."""
    _send(user_group(participant.user_id), {"type": "user.kick", "room": room.public_id.hex, "code": code})


def send_caucus(room: Room, users: list[int]) -> None:
    """To the caucus members' sockets in any room of the case: the caucus
    opened or closed (they may switch to it)."""
    message = {
        "type": "user.caucus",
        "frame": {"type": "caucus", "room_id": str(room.public_id), "open": room.is_open},
    }
    for user_id in users:
        _send(user_group(user_id), message)


def send_room_closed(room: Room, code: int) -> None:
    """To every socket in the room, lobby included: close with `code`."""
    _send(room.group, {"type": "room.close", "code": code})
    _send(room.lobby_group, {"type": "room.close", "code": code})


def send_case_closed(case, code: int) -> None:
    """To every socket in any room of the case: close with `code`."""
    _send(case_group(case), {"type": "room.close", "code": code})


def send_logout(user_id: int) -> None:
    """To every socket of the user: they logged out (4401)."""
    _send(user_group(user_id), {"type": "user.kick", "room": None, "code": 4401})
