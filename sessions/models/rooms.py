"""Virtual rooms: the joint room and the caucuses of a case, their sessions,
lobby admissions, the sequenced room events (messages and system events),
shared documents and live connections (presence)."""

import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sessions.models.case import Case, Participant

__all__ = [
    "RoomKind", "Room", "MediationSession", "AdmissionStatus", "Admission", "EventKind",
    "RoomEvent", "RoomDocument", "RoomConnection",
]


class RoomKind(models.TextChoices):
    JOINT = "joint", _("Joint room")
    CAUCUS = "caucus", _("Caucus")


class Room(models.Model):
    """A room of a case. The joint room holds everyone; a caucus holds one
    party (with their representatives) and the mediator. `last_seq` is the
    room's event counter: the next event takes `last_seq + 1` under a row lock,
    so a room's events are numbered 1, 2, 3, ... without gaps."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="rooms")
    kind = models.CharField(max_length=8, choices=RoomKind.choices)
    party = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="caucuses"
    )
    is_open = models.BooleanField(default=True)
    locked = models.BooleanField(default=False)
    last_seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case"], condition=Q(kind="joint"), name="one_joint_room_per_case"),
            models.UniqueConstraint(fields=["case", "party"], name="one_caucus_per_party"),
            models.CheckConstraint(
                condition=Q(kind="joint", party__isnull=True) | Q(kind="caucus", party__isnull=False),
                name="caucus_has_a_party",
            ),
        ]

    def __str__(self):
        return f"{self.case} — {self.get_kind_display()}"

    @property
    def group(self) -> str:
        """Channel-layer group of the room's admitted sockets."""
        return f"room.{self.public_id.hex}"

    @property
    def moderators_group(self) -> str:
        """Channel-layer group of the mediator's sockets in this room."""
        return f"room-mod.{self.public_id.hex}"

    @property
    def lobby_group(self) -> str:
        """Channel-layer group of the sockets waiting in this room's lobby."""
        return f"lobby.{self.public_id.hex}"


class MediationSession(models.Model):
    """A sitting of the mediation, from the mediator's start to its end.
    Lobby admissions and mutes last for one session."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="sittings")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["case", "number"]
        constraints = [
            models.UniqueConstraint(fields=["case", "number"], name="session_numbers_per_case"),
            models.UniqueConstraint(
                fields=["case"], condition=Q(ended_at__isnull=True), name="one_open_session_per_case"
            ),
        ]


class AdmissionStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting in the lobby")
    ADMITTED = "admitted", _("Admitted")
    DECLINED = "declined", _("Not admitted")
    REMOVED = "removed", _("Removed")


class Admission(models.Model):
    """Whether a participant is in a room for the current session, and muted.
    Deleted when the session ends: the next session starts in the lobby."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="admissions")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="admissions")
    status = models.CharField(max_length=10, choices=AdmissionStatus.choices, default=AdmissionStatus.WAITING)
    muted = models.BooleanField(default=False)
    requested_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "participant"], name="one_admission_per_room"),
        ]


class EventKind(models.TextChoices):
    MESSAGE = "message", _("Message")
    JOINED = "joined", _("Joined")
    LEFT = "left", _("Left")
    ADMITTED = "admitted", _("Admitted from the lobby")
    MUTED = "muted", _("Muted")
    UNMUTED = "unmuted", _("Unmuted")
    REMOVED = "removed", _("Removed from the room")
    REDACTED = "redacted", _("Message removed")
    LOCKED = "locked", _("Room locked")
    UNLOCKED = "unlocked", _("Room unlocked")
    CAUCUS_OPENED = "caucus_opened", _("Caucus opened")
    CAUCUS_CLOSED = "caucus_closed", _("Caucus closed")
    DOCUMENT = "document", _("Document shared")
    SESSION_STARTED = "session_started", _("Session started")
    SESSION_ENDED = "session_ended", _("Session ended")
    CLOSED = "closed", _("Room closed")
    CONSENT_GIVEN = "consent_given", _("Consented to a transcript")
    CONSENT_WITHDRAWN = "consent_withdrawn", _("Withdrew consent to a transcript")


class RoomEvent(models.Model):
    """One sequenced event of a room: a message or a system event.

    A message is idempotent on (room, client_id). Its body is stored sealed
    with the case's data key (`body_sealed`, see sessions.content); a
    redacted or destroyed message keeps who and when, not the body."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    client_id = models.UUIDField(null=True, blank=True)
    body_sealed = models.BinaryField(null=True, editable=False)
    document = models.ForeignKey(
        "RoomDocument", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_seq = models.PositiveBigIntegerField(null=True, blank=True)
    redacted_at = models.DateTimeField(null=True, blank=True)
    redacted_by = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="one_event_per_seq"),
            models.UniqueConstraint(
                fields=["room", "client_id"], condition=Q(client_id__isnull=False), name="idempotent_client_id"
            ),
        ]

    def __str__(self):
        return f"{self.room_id}#{self.seq} {self.kind}"


def _private_storage():
    return storages["private"]


def _document_path(instance, _filename) -> str:
    # Never the uploader's name on disk: a random name in a per-case folder.
    return f"rooms/{instance.room.case.public_id.hex}/{uuid.uuid4().hex}"


class RoomDocument(models.Model):
    """A file shared in a room; stored sealed with the case's data key outside
    the web root, served by a view that asks the policy. Its name is sealed
    too; size and type stay readable as metadata."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="documents")
    shared_by = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    name_sealed = models.BinaryField(null=True, editable=False)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    file = models.FileField(storage=_private_storage, upload_to=_document_path, max_length=200, blank=True)
    shared_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["shared_at", "id"]


class RoomConnection(models.Model):
    """One open WebSocket, for presence across processes. A process that is
    killed leaves its rows behind; `seen_at` (refreshed by the client's ping)
    ages them out."""

    channel_name = models.CharField(max_length=200, unique=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="connections")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    connected_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["room", "seen_at"])]
