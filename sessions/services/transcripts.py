"""Transcripts of a room: off unless every party in the room consents there.

Consent is a sequenced room event (everyone in the room sees it) and an audit
row; a party may withdraw it until the export. The export is a PDF rendered
by WeasyPrint from our own template only, watermarked on every page with who
exported it and when, and audited.
"""

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from odr import policy
from odr.audit import SYSTEM, Origin
from odr.models import AuditAction, User
from odr.pdf import FONT_FACES, render_pdf
from sessions.models import PARTY_ROLES, EventKind, ParticipantStatus, Room, RoomKind
from sessions.services import rooms
from sessions.services.confidentiality import case_cipher, reveal_events
from sessions.services.rooms import RoomRefused

TEMPLATE = "mediation/transcript.html"
_CONSENT_KINDS = (EventKind.CONSENT_GIVEN, EventKind.CONSENT_WITHDRAWN)


def room_parties(room: Room):
    """The parties whose consent a transcript of the room needs: every party
    of the case in the joint room, the caucus's party in a caucus."""
    if room.kind == RoomKind.CAUCUS:
        return [room.party]
    return list(
        room.case.participants.filter(role__in=PARTY_ROLES, status=ParticipantStatus.ACTIVE)
        .select_related("user")
    )


def consents(room: Room) -> dict[int, bool]:
    """Each party's current answer in the room (participant pk → consents)."""
    state: dict[int, bool] = {}
    for actor_id, kind in room.events.filter(kind__in=_CONSENT_KINDS).order_by("seq").values_list("actor_id", "kind"):
        state[actor_id] = kind == EventKind.CONSENT_GIVEN
    return state


def all_parties_consent(room: Room) -> bool:
    parties = room_parties(room)
    state = consents(room)
    return bool(parties) and all(state.get(party.pk, False) for party in parties)


def transcript_consent(*, room: Room, user: User, consent: bool, origin: Origin = SYSTEM) -> bool:
    """A party gives (or withdraws) consent to a transcript of this room.
    Idempotent: repeating the current answer records nothing."""
    with transaction.atomic():
        room = rooms.lock_room(room)
        if not policy.can(user, "room.consent" if consent else "room.withdraw_consent", room):
            raise RoomRefused(_("Only a party in this room can consent to its transcript."), code="forbidden")
        participant = rooms.room_member(user, room)
        if consents(room).get(participant.pk, False) == consent:
            return False
        rooms.append_event(
            room, EventKind.CONSENT_GIVEN if consent else EventKind.CONSENT_WITHDRAWN, actor=participant
        )
        rooms.audit_room(
            AuditAction.TRANSCRIPT_CONSENT_GIVEN if consent else AuditAction.TRANSCRIPT_CONSENT_WITHDRAWN,
            user=user, origin=origin, room=room, participant=str(participant.public_id),
        )
    return True


def css_string(text: str) -> str:
    """`text` as a quoted CSS string: every character that could end the
    string, the rule or the <style> element is a CSS hex escape."""
    return '"' + "".join(c if c.isalnum() or c in " .,:@-·" else f"\\{ord(c):x} " for c in text) + '"'


def transcript_export(*, room: Room, user: User, origin: Origin = SYSTEM) -> bytes:
    """The room's transcript as a PDF for the mediator (every party consented)."""
    if not policy.can(user, "room.export", room):
        raise RoomRefused(
            _("A transcript can be exported only by the mediator, after every party in the room has consented."),
            code="forbidden",
        )
    case = room.case
    case_cipher(case)  # ContentDestroyed before anything is rendered
    events = reveal_events(
        list(room.events.select_related("actor__user", "subject__user", "document").order_by("seq")), case
    )
    exported_at = timezone.now()
    with translation.override(case.language):
        watermark = _("Exported by %(who)s on %(when)s") % {
            "who": f"{user.display_name} <{user.email}>",
            "when": timezone.localtime(exported_at).strftime("%Y-%m-%d %H:%M %Z"),
        }
        confidential = _("CONFIDENTIAL")
        header = f"{confidential} · {case.reference or ''}"
        html = render_to_string(
            TEMPLATE,
            {
                "room": room,
                "case": case,
                "events": events,
                "exporter": user,
                "exported_at": exported_at,
                "parties": room_parties(room),
                "watermark": watermark,
                "css_watermark": mark_safe(css_string(watermark)),
                "css_header": mark_safe(css_string(header)),
                "font_faces": mark_safe(FONT_FACES),
            },
        )
    pdf = render_pdf(html)
    with transaction.atomic():
        # A party may have withdrawn consent while the PDF was rendered: decide
        # again on the locked room (consents are written under the same lock).
        room = rooms.lock_room(room)
        if not policy.can(user, "room.export", room):
            raise RoomRefused(
                _("A party withdrew consent to the transcript; it was not exported."), code="forbidden"
            )
        rooms.audit_room(
            AuditAction.TRANSCRIPT_EXPORTED, user=user, origin=origin, room=room,
            events=len(events), exported_at=exported_at.isoformat(),
        )
    return pdf
