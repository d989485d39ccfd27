"""Room pages: the room itself, document upload and download."""

import io
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from odr import policy
from odr.audit import Origin
from odr.crypto import ContentDestroyed
from sessions import events, selectors
from sessions.models import CLOSED_STATUSES, Room, RoomKind
from sessions.policies import access_room, undertaken
from sessions.services import confidentiality, documents, retention, rooms, transcripts
from sessions.services.rooms import RoomGone, RoomRefused


def _closed_room(user, room_id) -> Room | None:
    """A room of a case that has ended, for one of its members: the page then
    says when its content will be (or was) destroyed."""
    room = Room.objects.select_related("case").filter(public_id=room_id).first()
    if room is None or room.case.status not in CLOSED_STATUSES:
        return None
    return room if policy.can(user, "room.see_closed", room) else None


@login_required
def room(request, room_id):
    closed = _closed_room(request.user, room_id)
    if closed is not None:
        return render(
            request,
            "mediation/room_closed.html",
            {"room": closed, "case": closed.case, "destruction_date": retention.destruction_date(closed.case),
             "hold": retention.legal_hold_in_force(closed.case)},
        )
    room, me = access_room(request.user, room_id, action="room.view")
    if not undertaken(me):
        target = reverse("mediation:undertaking", args=[room.case.public_id])
        return redirect(f"{target}?{urlencode({'next': request.path})}")
    readable = policy.can(request.user, "room.read", room)
    latest = []
    if readable:
        latest = [
            events.event_frame(e)
            for e in rooms.events_before(room=room, before_seq=room.last_seq + 1, limit=settings.ODR_HISTORY_PAGE)
        ]
    members = [events.participant_ref(m) for m in rooms.room_members(room)]
    client = {
        "room_id": str(room.public_id),
        "kind": room.kind,
        "ws_path": f"/ws/rooms/{room.public_id}/",
        "upload_url": reverse("mediation:room_documents", args=[room.public_id]),
        "keepalive_url": reverse("keepalive"),
        "me": str(me.public_id),
        "mediator": me.role == "mediator",
        "members": members,
        "events": latest,
        "limits": {"message_chars": settings.ODR_MESSAGE_MAX_CHARS, "upload_bytes": settings.ODR_UPLOAD_MAX_BYTES},
    }
    return render(
        request,
        "mediation/room.html",
        {
            "room": room,
            "case": room.case,
            "me": me,
            "is_caucus": room.kind == RoomKind.CAUCUS,
            "rooms_nav": selectors.rooms_for(user=request.user, case=room.case),
            "can_post": policy.can(request.user, "room.post", room),
            "transcript": _transcript_state(request.user, room, me),
            "client": client,
            "strings": client_strings(),
        },
    )


def _transcript_state(user, room: Room, me) -> dict:
    parties = transcripts.room_parties(room)
    answers = transcripts.consents(room)
    return {
        "parties": [(party, answers.get(party.pk, False)) for party in parties],
        "can_consent": policy.can(user, "room.consent", room),
        "can_withdraw": policy.can(user, "room.withdraw_consent", room),
        "my_consent": answers.get(me.pk, False),
        "can_export": policy.can(user, "room.export", room),
    }


def client_strings() -> dict[str, str]:
    """The browser client's words, translated; {actor}, {subject}, {name},
    {count} are filled in as text, never as HTML."""
    return {
        "connecting": _("Connecting…"),
        "online": _("Connected"),
        "offline": _("Connection lost; reconnecting… Messages you send now are kept and sent when it is back."),
        "you": _("you"),
        "pending": _("sending…"),
        "failed": _("not sent"),
        "redacted": _("This message was removed by the mediator."),
        "typing": _("{name} is typing…"),
        "waiting_none": _("Nobody is waiting."),
        "admit": _("Admit"),
        "decline": _("Decline"),
        "mute": _("Mute"),
        "unmute": _("Unmute"),
        "remove": _("Remove"),
        "readmit": _("Let back in"),
        "redact": _("Remove message"),
        "online_mark": _("online"),
        "offline_mark": _("offline"),
        "muted_mark": _("muted"),
        "removed_mark": _("removed"),
        "waiting_mark": _("in the lobby"),
        "caucus_invite": _("The mediator opened a private caucus with you."),
        "caucus_go": _("Go to the caucus"),
        "caucus_closed": _("A caucus was closed."),
        "uploading": _("Sharing…"),
        "uploaded": _("Shared."),
        "upload_too_large": _("The file is too large."),
        "closed_4401": _("You are signed out. Sign in again to continue."),
        "closed_4403": _("You are not in this room (the mediator may have removed you)."),
        "closed_4404": _("There is no such room."),
        "closed_4409": _("The room is closed or locked, or the session has ended."),
        "closed_4429": _("Too many messages: wait a moment; reconnecting shortly."),
        "retry": _("Try again"),
        "kind_message": "",
        "kind_joined": _("{actor} joined"),
        "kind_left": _("{actor} left"),
        "kind_admitted": _("{actor} admitted {subject}"),
        "kind_muted": _("{actor} muted {subject}"),
        "kind_unmuted": _("{actor} unmuted {subject}"),
        "kind_removed": _("{actor} removed {subject} from the room"),
        "kind_redacted": _("{actor} removed a message"),
        "kind_locked": _("{actor} locked the room"),
        "kind_unlocked": _("{actor} unlocked the room"),
        "kind_caucus_opened": _("{actor} opened a caucus with {subject}"),
        "kind_caucus_closed": _("{actor} closed the caucus"),
        "kind_document": _("{actor} shared a document:"),
        "kind_session_started": _("{actor} started the session"),
        "kind_session_ended": _("{actor} ended the session"),
        "kind_closed": _("The room was closed"),
        "consents": _("consents"),
        "not_consented": _("has not consented"),
        "kind_consent_given": _("{actor} consented to a transcript of this room"),
        "kind_consent_withdrawn": _("{actor} withdrew consent to a transcript of this room"),
        "role_claimant": _("Claimant"),
        "role_respondent": _("Respondent"),
        "role_representative": _("Representative"),
        "role_mediator": _("Mediator"),
        "role_observer": _("Observer"),
        "someone": _("someone"),
    }


def _refusal(error: RoomRefused, status: int = 400) -> JsonResponse:
    if error.code == "too_large":
        status = 413
    elif error.code in ("forbidden", "muted", "locked"):
        status = 403
    return JsonResponse({"error": {"code": error.code, "detail": " ".join(error.messages)}}, status=status)


@login_required
@require_POST
def document_upload(request, room_id):
    room, _me = access_room(request.user, room_id, action="room.view")
    upload = request.FILES.get("file")
    if upload is None:
        return _refusal(RoomRefused(_("Choose a file to share."), code="bad_request"))
    try:
        document = documents.document_share(
            room=room, user=request.user, upload=upload, origin=Origin.from_request(request)
        )
    except RoomRefused as error:
        return _refusal(error)
    except RoomGone:
        return _refusal(RoomRefused(_("You are not in this room."), code="forbidden"))
    return JsonResponse({"document": {"id": str(document.public_id), "name": document.name}}, status=201)


@login_required
def document_download(request, room_id, document_id):
    room, _me = access_room(request.user, room_id, action="room.view")
    if not policy.can(request.user, "room.read", room):
        raise Http404
    document = room.documents.filter(public_id=document_id).first()
    if document is None:
        raise Http404
    try:
        cipher = confidentiality.case_cipher(room.case)
        content = confidentiality.document_content(document, cipher)
    except ContentDestroyed:
        raise Http404 from None
    confidentiality.reveal_document(document, cipher)
    response = FileResponse(
        io.BytesIO(content),
        as_attachment=True,
        # Documents shared before names were matched to their type get it now.
        filename=documents.clean_name(document.name, document.content_type),
        content_type=document.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
