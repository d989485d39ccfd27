"""Pages of the procedure: parse the request, call a service, render."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from odr import policy
from odr.audit import Origin
from sessions import agreement_to_mediate, selectors
from sessions.forms import (
    ApplicationForm,
    ChooseMediatorForm,
    CloseForm,
    InviteForm,
    OtherPartyFormSet,
    ReasonForm,
    TermExtensionForm,
)
from sessions.models import CaseStatus, Role
from sessions.policies import access_case, participant_of
from sessions.services import confidentiality, intake, invitations, mediators, procedure, retention


def _show_errors(request, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


def _case_action(request, case, service, success: str):
    """Run a service for a POST on the case page; report the outcome there."""
    try:
        service()
    except ValidationError as error:
        _show_errors(request, error)
    except PermissionDenied:
        messages.error(request, _("You cannot do that in this case at its current stage."))
    else:
        messages.success(request, success)
    return redirect("mediation:case_detail", case.public_id)


@login_required
def dashboard(request):
    user = request.user
    context = {
        "rows": [r for r in selectors.cases_for_user(user=user) if r.participant.role != Role.MEDIATOR],
        "invitations": selectors.invitations_for_user(user=user),
        "court": policy.court_of(user) if policy.can(user, "court.work") else None,
    }
    if policy.can(user, "mediator.work"):
        context["caseload"] = selectors.mediator_caseload(user=user)
    for invitation in context["invitations"]:
        invitation.link = reverse("mediation:invitation", args=[invitations.invitation_token(invitation)])
    return render(request, "mediation/dashboard.html", context)


def _application_from(form, formset) -> intake.Application:
    data = form.cleaned_data
    return intake.Application(
        category=data["category"],
        description=data["description"],
        language=data["language"],
        court=data.get("court"),
        court_case_number=data.get("court_case_number", ""),
        mediator=data.get("mediator"),
        other_parties=[
            intake.OtherParty(name=f.cleaned_data["name"], email=f.cleaned_data["email"])
            for f in formset.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ],
    )


def _application_page(request, case=None):
    if case is None:
        initial = {"language": request.user.preferred_language}
        parties_initial = None
    else:
        initial = {
            "category": case.category,
            "description": case.description,
            "language": case.language,
            "court": case.court,
            "court_case_number": case.court_case_number,
            "mediator": case.requested_mediator,
        }
        parties_initial = [{"name": i.name, "email": i.email} for i in case.invitations.all()]
    form = ApplicationForm(request.POST or None, initial=initial)
    formset = OtherPartyFormSet(request.POST or None, initial=parties_initial, prefix="parties")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        application = _application_from(form, formset)
        origin = Origin.from_request(request)
        try:
            if "save_draft" in request.POST:
                case = intake.case_draft_save(
                    claimant=request.user, application=application, origin=origin, case=case
                )
                messages.success(request, _("Your application was saved as a draft."))
            elif case is None:
                case = intake.case_file(claimant=request.user, application=application, origin=origin)
                messages.success(request, _("Your application was filed. The other parties and the mediator have been invited."))
            else:
                case = intake.case_draft_save(
                    claimant=request.user, application=application, origin=origin, case=case
                )
                intake.case_submit(case=case, claimant=request.user, origin=origin)
                messages.success(request, _("Your application was filed. The other parties and the mediator have been invited."))
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("mediation:case_detail", case.public_id)
    return render(request, "mediation/application.html", {"form": form, "formset": formset, "case": case})


@login_required
def case_new(request):
    policy.require(request.user, "case.file")
    return _application_page(request)


@login_required
def case_edit(request, case_id):
    case = access_case(request.user, case_id, action="case.edit_draft")
    return _application_page(request, case)


@login_required
def case_detail(request, case_id):
    user = request.user
    case = access_case(user, case_id)
    viewer = participant_of(user, case)
    actions = {
        name: policy.can(user, f"case.{name}", case)
        for name in (
            "edit_draft", "answer_as_mediator", "choose_mediator", "accept_agreement_to_mediate",
            "withdraw", "close", "propose_term_extension", "answer_term_extension",
            "invite_representative", "invite_observer",
        )
    }
    return render(
        request,
        "mediation/case_detail.html",
        {
            "case": case,
            "viewer": viewer,
            "can": actions,
            "participants": selectors.case_participants(user=user, case=case),
            "invitations": selectors.case_open_invitations(user=user, case=case),
            "history": selectors.case_history(user=user, case=case),
            "extension": selectors.pending_extension(case=case),
            "next_action": selectors.next_action(user=user, case=case),
            "atm_acceptances": case.atm_acceptances.select_related("participant", "user"),
            "choose_form": ChooseMediatorForm(case=case) if actions["choose_mediator"] else None,
            "extension_form": TermExtensionForm(),
            "reason_form": ReasonForm(),
            "close_form": CloseForm(),
            "invite_form": InviteForm(),
            "days_left": case.term_days_left(),
            "rooms": selectors.rooms_for(user=user, case=case),
            "undertaking": viewer.undertakings.filter(text_version=confidentiality.UNDERTAKING_VERSION).first()
            if viewer else None,
            "destruction_date": retention.destruction_date(case),
            "legal_hold": retention.legal_hold_in_force(case),
            "retention_days": settings.ODR_RETENTION_DAYS,
            "can_view_agreement": policy.can(user, "agreement.view_page", case),
        },
    )


@login_required
@require_POST
def case_submit(request, case_id):
    case = access_case(request.user, case_id, action="case.edit_draft")
    return _case_action(
        request, case,
        lambda: intake.case_submit(case=case, claimant=request.user, origin=Origin.from_request(request)),
        _("Your application was filed. The other parties and the mediator have been invited."),
    )


@login_required
@require_POST
def mediator_answer(request, case_id):
    case = access_case(request.user, case_id)
    accept = request.POST.get("answer") == "accept"
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _case_action(
        request, case,
        lambda: mediators.mediator_answer(
            case=case, user=request.user, accept=accept, reason=reason, origin=Origin.from_request(request)
        ),
        _("You accepted the case.") if accept else _("You declined the case."),
    )


@login_required
@require_POST
def choose_mediator(request, case_id):
    case = access_case(request.user, case_id)
    form = ChooseMediatorForm(request.POST, case=case)
    if not form.is_valid():
        messages.error(request, _("Choose a mediator from the list."))
        return redirect("mediation:case_detail", case.public_id)
    return _case_action(
        request, case,
        lambda: mediators.mediator_choose_another(
            case=case, claimant=request.user, mediator=form.cleaned_data["mediator"],
            origin=Origin.from_request(request),
        ),
        _("The mediator has been asked to take the case."),
    )


@login_required
def agreement_to_mediate_page(request, case_id):
    case = access_case(request.user, case_id)
    text = agreement_to_mediate.render(case=case, language=case.language)
    if request.method == "POST":
        if "consent" not in request.POST:
            messages.error(request, _("Tick the box to confirm that you read and accept the agreement."))
        else:
            return _case_action(
                request, case,
                lambda: procedure.atm_accept(
                    case=case, user=request.user, text_sha256=request.POST.get("text_sha256", ""),
                    origin=Origin.from_request(request),
                ),
                _("You accepted the agreement to mediate."),
            )
    return render(
        request,
        "mediation/agreement_to_mediate.html",
        {
            "case": case,
            "text": text,
            "text_sha256": agreement_to_mediate.digest(text),
            "version": agreement_to_mediate.VERSION,
            "can_accept": policy.can(request.user, "case.accept_agreement_to_mediate", case),
            "acceptances": case.atm_acceptances.select_related("user", "participant"),
        },
    )


@login_required
@require_POST
def withdraw(request, case_id):
    case = access_case(request.user, case_id)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _case_action(
        request, case,
        lambda: procedure.case_withdraw(case=case, user=request.user, reason=reason, origin=Origin.from_request(request)),
        _("You withdrew from the mediation. The procedure has ended."),
    )


@login_required
@require_POST
def close(request, case_id):
    case = access_case(request.user, case_id)
    form = CloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose whether the dispute was settled."))
        return redirect("mediation:case_detail", case.public_id)
    return _case_action(
        request, case,
        lambda: procedure.case_close(
            case=case, user=request.user, outcome=CaseStatus(form.cleaned_data["outcome"]),
            origin=Origin.from_request(request),
        ),
        _("The mediation has ended."),
    )


@login_required
@require_POST
def extension_propose(request, case_id):
    case = access_case(request.user, case_id)
    form = TermExtensionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("mediation:case_detail", case.public_id)
    return _case_action(
        request, case,
        lambda: procedure.term_extension_propose(
            case=case, user=request.user, new_ends_on=form.cleaned_data["new_ends_on"],
            reason=form.cleaned_data["reason"], origin=Origin.from_request(request),
        ),
        _("The extension was proposed. It takes effect when every party consents."),
    )


@login_required
@require_POST
def extension_answer(request, case_id):
    case = access_case(request.user, case_id)
    consents = request.POST.get("answer") == "consent"
    return _case_action(
        request, case,
        lambda: procedure.term_extension_answer(
            case=case, user=request.user, consents=consents, origin=Origin.from_request(request)
        ),
        _("Your answer was recorded."),
    )


@login_required
@require_POST
def invite(request, case_id, role):
    case = access_case(request.user, case_id)
    if role not in (Role.REPRESENTATIVE, Role.OBSERVER):
        raise PermissionDenied
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a name and a valid email address."))
        return redirect("mediation:case_detail", case.public_id)
    return _case_action(
        request, case,
        lambda: invitations.invitation_create(
            case=case, actor=request.user, role=Role(role), name=form.cleaned_data["name"],
            email=form.cleaned_data["email"], origin=Origin.from_request(request),
        ),
        _("The invitation was sent."),
    )


def invitation(request, token):
    """The emailed link. Anyone holding it may read the proposal and decline;
    accepting needs an account with the invited email address."""
    try:
        inv = invitations.invitation_from_token(token)
    except invitations.InvitationLinkError as error:
        return render(request, "mediation/invitation_invalid.html", {"error": error.messages[0]}, status=410)
    origin = Origin.from_request(request)
    if request.method == "POST":
        answer = request.POST.get("answer")
        try:
            if answer == "decline":
                form = ReasonForm(request.POST)
                reason = form.cleaned_data["reason"] if form.is_valid() else ""
                invitations.invitation_decline(invitation=inv, user=request.user, reason=reason, origin=origin)
                return render(request, "mediation/invitation_done.html", {"invitation": inv, "accepted": False})
            if answer == "accept" and request.user.is_authenticated:
                invitations.invitation_accept(invitation=inv, user=request.user, origin=origin)
                messages.success(request, _("You joined the case."))
                return redirect("mediation:case_detail", inv.case.public_id)
            messages.error(request, _("Sign in or create an account to accept the invitation."))
        except ValidationError as error:
            _show_errors(request, error)
    return render(
        request,
        "mediation/invitation.html",
        {
            "invitation": inv,
            "case": inv.case,
            "mediator": selectors.case_mediator(case=inv.case),
            "reason_form": ReasonForm(),
            "may_answer": request.user.is_authenticated and policy.can(request.user, "invitation.answer", inv),
        },
    )
