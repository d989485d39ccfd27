"""Pages of the confidentiality controls: the undertaking, sharing contact
details, transcripts (consent and export), and the administrators' legal
hold and break-glass pages."""

from allauth.account.decorators import reauthentication_required
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from odr import policy
from odr.audit import Origin
from odr.crypto import ContentDestroyed
from odr.http import safe_next
from sessions.models import Case
from sessions.policies import access_case, access_room, participant_of
from sessions.services import confidentiality, retention, transcripts
from sessions.services.rooms import RoomRefused


@login_required
def undertaking(request, case_id):
    case = access_case(request.user, case_id)
    participant = participant_of(request.user, case)
    language = request.LANGUAGE_CODE if request.LANGUAGE_CODE in ("kk", "ru", "en") else case.language
    text = confidentiality.undertaking_render(case=case, language=language)
    back = safe_next(
        request, request.POST.get("next") or request.GET.get("next"),
        reverse("mediation:case_detail", args=[case.public_id]),
    )
    if request.method == "POST":
        if "consent" not in request.POST:
            messages.error(request, _("Tick the box to confirm that you read and accept the undertaking."))
        else:
            try:
                confidentiality.undertaking_accept(
                    case=case, user=request.user, text_sha256=request.POST.get("text_sha256", ""),
                    language=language, origin=Origin.from_request(request),
                )
            except ValidationError as error:
                for message in error.messages:
                    messages.error(request, message)
            else:
                messages.success(request, _("You accepted the confidentiality undertaking."))
                return redirect(back)
    return render(
        request,
        "mediation/undertaking.html",
        {
            "case": case,
            "text": text,
            "text_sha256": confidentiality.undertaking_digest(text),
            "version": confidentiality.UNDERTAKING_VERSION,
            "accepted": participant.undertakings.filter(text_version=confidentiality.UNDERTAKING_VERSION).first(),
            "next": back,
        },
    )


@login_required
@require_POST
def contacts_sharing(request, case_id):
    case = access_case(request.user, case_id)
    participant = participant_of(request.user, case)
    share = request.POST.get("share") == "1"
    confidentiality.contacts_sharing_set(
        participant=participant, user=request.user, share=share, origin=Origin.from_request(request)
    )
    messages.success(
        request,
        _("The other participants now see your email and phone.") if share
        else _("Your email and phone are hidden from the other participants again (the mediator still sees them)."),
    )
    return redirect(reverse("mediation:case_detail", args=[case.public_id]))


@login_required
@require_POST
def transcript_consent(request, room_id):
    room, _me = access_room(request.user, room_id, action="room.view")
    consent = request.POST.get("consent") == "1"
    try:
        transcripts.transcript_consent(room=room, user=request.user, consent=consent, origin=Origin.from_request(request))
    except RoomRefused as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("You consented to a transcript of this room.") if consent
            else _("You withdrew your consent to a transcript of this room."),
        )
    return redirect("mediation:room", room.public_id)


@login_required
def transcript_export(request, room_id):
    """GET after re-authentication returns to the room; POST downloads. The
    room is looked up (404 for strangers) before re-authentication is asked."""
    room, _me = access_room(request.user, room_id, action="room.view")
    return _transcript_export(request, room)


@reauthentication_required
def _transcript_export(request, room):
    if request.method != "POST":
        return redirect("mediation:room", room.public_id)
    try:
        pdf = transcripts.transcript_export(room=room, user=request.user, origin=Origin.from_request(request))
    except RoomRefused as error:
        messages.error(request, " ".join(error.messages))
        return redirect("mediation:room", room.public_id)
    except ContentDestroyed:
        raise Http404 from None
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="transcript-{room.case.reference or room.case.public_id}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- Administrators ------------------------------------------------------------------------


def _staff_case(request, case_id, action: str) -> Case:
    """A case for an administrator's page: 404 for everyone else."""
    try:
        case = Case.objects.get(public_id=case_id)
    except Case.DoesNotExist:
        raise Http404 from None
    if not policy.can(request.user, action, case):
        raise Http404
    return case


@login_required
def legal_hold(request, case_id):
    case = _staff_case(request, case_id, "case.legal_hold")
    if request.method == "POST":
        service = retention.legal_hold_lift if request.POST.get("action") == "lift" else retention.legal_hold_place
        try:
            service(case=case, user=request.user, reason=request.POST.get("reason", ""), origin=Origin.from_request(request))
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Legal hold updated."))
            return redirect("mediation:legal_hold", case.public_id)
    return render(
        request,
        "mediation/staff/legal_hold.html",
        {
            "case": case,
            "hold": retention.legal_hold_in_force(case),
            "holds": case.legal_holds.select_related("placed_by", "lifted_by"),
            "destruction_date": retention.destruction_date(case),
        },
    )


@login_required
def break_glass(request, case_id):
    """Non-administrators get 404 before any re-authentication prompt."""
    return _break_glass(request, _staff_case(request, case_id, "case.break_glass"))


@reauthentication_required
def _break_glass(request, case):
    access = confidentiality.break_glass_in_force(case=case, user=request.user)
    if request.method == "POST" and access is None:
        try:
            access = confidentiality.break_glass_open(
                case=case, user=request.user, reason=request.POST.get("reason", ""),
                origin=Origin.from_request(request),
            )
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            return redirect("mediation:break_glass", case.public_id)
    rooms = confidentiality.break_glass_read(access=access, origin=Origin.from_request(request)) if access else []
    return render(
        request,
        "mediation/staff/break_glass.html",
        {"case": case, "access": access, "rooms": rooms},
    )
