"""The mediation agreement of a case (drafting, signing, the sealed PDF), and
the public verification page."""

import uuid
from urllib.parse import urlencode

from allauth.account.decorators import reauthentication_required
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from agreements import rendering, sandbox
from agreements.models import (
    OPEN_AGREEMENT_STATUSES,
    OPEN_FILING_STATUSES,
    Agreement,
    AgreementStatus,
    Layout,
)
from agreements.policies import undertaking_pending
from agreements.selectors import verify_code, verify_file
from agreements.services import documents, drafts, filing, issuing, signing
from odr import policy
from odr.audit import Origin
from odr.crypto import ContentDestroyed
from odr.ratelimit import client_address, rate_limit_hit
from sessions.models import Case
from sessions.policies import access_case
from sessions.services.procedure import atm_signatories


def _case(request, case_id, action: str = "agreement.view_page") -> Case:
    """The case, or 404 for anyone who may not see its agreement (observers,
    strangers, after destruction when there is no sealed agreement)."""
    case = access_case(request.user, case_id)
    if not policy.can(request.user, action, case):
        raise Http404
    return case


def _undertaking_first(request, case_id):
    """A party, representative or mediator who has not yet accepted the
    case's confidentiality undertaking is sent to it first (then back)."""
    case = access_case(request.user, case_id)
    if undertaking_pending(request.user, case):
        target = reverse("mediation:undertaking", args=[case.public_id])
        return redirect(f"{target}?{urlencode({'next': request.path})}")
    return None


def _agreement(case: Case, agreement_id) -> Agreement:
    try:
        return case.agreements.select_related("case", "draft").get(public_id=uuid.UUID(str(agreement_id)))
    except (Agreement.DoesNotExist, ValueError):
        raise Http404 from None


def _errors(request, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


def _preview(case: Case, draft, content: dict) -> str:
    """A version's words as the document shows them."""
    people = [rendering.Person(name=p.user.display_name, role=p.role) for p in atm_signatories(case)]
    doc = rendering.document_context(
        reference=case.reference or "", layout=draft.layout, content=content, people=people, date=timezone.localdate()
    )
    return rendering.render_body_html(doc)


@login_required
def agreement(request, case_id):
    """Everything about the case's agreement on one page: the latest version,
    its comments and proposals, the versions, the signing and the sealed PDF."""
    if detour := _undertaking_first(request, case_id):
        return detour
    case = _case(request, case_id)
    user = request.user
    can_read = policy.can(user, "agreement.view_draft", case)
    versions = list(case.drafts.select_related("created_by")) if can_read else []
    latest = versions[0] if versions else None
    comments, preview = [], ""
    if latest is not None:
        try:
            preview = _preview(case, latest, drafts.draft_content(latest))
            for comment in latest.comments.select_related("author"):
                text, proposal = drafts.comment_texts(comment)
                comments.append({"comment": comment, "text": text, "proposal": proposal,
                                 "section": drafts.section_label(comment.section) if comment.section else ""})
        except ContentDestroyed:
            raise Http404 from None
    rounds = list(case.agreements.select_related("draft", "ended_by").prefetch_related("signers__user"))
    current = next((a for a in rounds if a.status in OPEN_AGREEMENT_STATUSES), None)
    sealed = next((a for a in rounds if a.status == AgreementStatus.SEALED), None)
    past = [
        {"agreement": a, "reason": signing.agreement_end_reason(a) if can_read else ""}
        for a in rounds if a.status in (AgreementStatus.DECLINED, AgreementStatus.WITHDRAWN)
    ]
    filings = list(sealed.filings.prefetch_related("events").select_related("court")) if sealed else []
    return render(request, "agreements/agreement.html", {
        "case": case,
        "filings": filings,
        "open_filing": next((f for f in filings if f.status in OPEN_FILING_STATUSES), None),
        "latest": latest,
        "versions": versions,
        "preview": preview,
        "comments": comments,
        "sections": [(key, drafts.section_label(key)) for key in drafts.section_keys(latest.layout)] if latest else [],
        "current": current,
        "sealed": sealed,
        "past": past,
        "my_signer": current.signers.filter(user=user).first() if current else None,
        "can": {
            "read": can_read,
            "edit": policy.can(user, "agreement.edit_draft", case) and current is None,
            "comment": policy.can(user, "agreement.comment", case),
            "freeze": policy.can(user, "agreement.freeze", case) and current is None and latest is not None,
            "sign": current is not None and policy.can(user, "agreement.sign", current),
            "decline": current is not None and policy.can(user, "agreement.decline", current),
            "withdraw": current is not None and policy.can(user, "agreement.withdraw", current),
            "download": sealed is not None and policy.can(user, "agreement.download", sealed),
            "file": sealed is not None and case.court_id is not None and policy.can(user, "agreement.file", sealed),
        },
    })


@login_required
def draft(request, case_id):
    """The latest version for those who read it; the mediator's editor (a
    POST saves a new version). `?layout=` switches the editor's layout,
    `?proposal=<id>` starts from a party's proposed wording."""
    if detour := _undertaking_first(request, case_id):
        return detour
    case = _case(request, case_id, "agreement.view_draft")
    may_edit = policy.can(request.user, "agreement.edit_draft", case)
    # While a version is being signed the mediator reads it, as the parties do
    # (a POST still reaches the service, which says why it refuses).
    can_edit = may_edit and not case.agreements.filter(status__in=OPEN_AGREEMENT_STATUSES).exists()
    versions = list(case.drafts.select_related("created_by"))
    latest = versions[0] if versions else None
    layout = request.POST.get("layout") or request.GET.get("layout") or (latest.layout if latest else case.language)
    if layout not in Layout.values:
        layout = case.language
    try:
        saved = current = drafts.draft_content(latest) if latest else {}
    except ContentDestroyed:
        raise Http404 from None
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        try:
            drafts.draft_save(case=case, user=request.user, fields=request.POST, layout=layout,
                              origin=Origin.from_request(request))
        except ValidationError as error:
            _errors(request, error)
            current = {key: request.POST.get(key, "") for key in drafts.section_keys(layout)}
        else:
            messages.success(request, _("The draft was saved as a new version."))
            return redirect("agreements:draft", case.public_id)
    values = {**drafts.draft_defaults(layout=layout), **{k: v for k, v in current.items() if v}}
    proposal_id = request.GET.get("proposal")
    if can_edit and proposal_id and latest is not None:
        comment = latest.comments.filter(public_id=_uuid(proposal_id)).exclude(section="").first()
        if comment is not None and comment.section in values:
            values[comment.section] = drafts.comment_texts(comment)[1]
    return render(request, "agreements/draft.html", {
        "case": case,
        "latest": latest,
        "versions": versions,
        "layout": layout,
        "layouts": Layout.choices,
        "fields": [
            {"key": key, "label": drafts.section_label(key), "value": values.get(key, "")}
            for key in drafts.section_keys(layout)
        ],
        "preview": _preview(case, latest, saved) if latest and not can_edit else "",
        "can_edit": can_edit,
    })


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@login_required
def compare(request, case_id):
    """The differences between two versions (`?a=&b=`, version numbers;
    by default the last two)."""
    case = _case(request, case_id, "agreement.view_draft")
    versions = list(case.drafts.all())
    if len(versions) < 2:
        messages.info(request, _("There is only one version so far."))
        return redirect("agreements:agreement", case.public_id)
    by_number = {d.version: d for d in versions}
    try:
        older = by_number[int(request.GET.get("a", versions[1].version))]
        newer = by_number[int(request.GET.get("b", versions[0].version))]
    except (KeyError, ValueError):
        raise Http404 from None
    if older.version > newer.version:
        older, newer = newer, older
    try:
        sections = drafts.drafts_compare(older, newer)
    except ContentDestroyed:
        raise Http404 from None
    return render(request, "agreements/compare.html", {
        "case": case, "older": older, "newer": newer, "versions": versions, "sections": sections,
        "changed": sum(1 for s in sections if s["changed"]),
    })


@login_required
@require_POST
def comment(request, case_id):
    case = _case(request, case_id, "agreement.view_draft")
    version = case.drafts.filter(public_id=_uuid(request.POST.get("draft"))).first()
    if version is None:
        raise Http404
    try:
        drafts.draft_comment(
            draft=version, user=request.user, text=request.POST.get("text", ""),
            section=request.POST.get("section", ""), proposal=request.POST.get("proposal", ""),
            origin=Origin.from_request(request),
        )
    except ValidationError as error:
        _errors(request, error)
    except PermissionDenied:
        messages.error(request, _("Comments are closed for this case."))
    else:
        messages.success(request, _("Your comment was added."))
    return redirect("agreements:agreement", case.public_id)


@login_required
@require_POST
def freeze(request, case_id):
    case = _case(request, case_id, "agreement.freeze")
    version = case.drafts.filter(public_id=_uuid(request.POST.get("draft"))).first()
    if version is None:
        raise Http404
    try:
        signing.agreement_freeze(case=case, user=request.user, draft=version, origin=Origin.from_request(request))
    except ValidationError as error:
        _errors(request, error)
    else:
        messages.success(request, _("The version is frozen. The parties and you can now sign it."))
    return redirect("agreements:agreement", case.public_id)


@login_required
def sign(request, case_id, agreement_id):
    """Strangers get 404 before any re-authentication prompt."""
    if detour := _undertaking_first(request, case_id):
        return detour
    case = _case(request, case_id, "agreement.view_draft")
    return _sign(request, case, _agreement(case, agreement_id))


@reauthentication_required
def _sign(request, case, agreement):
    user = request.user
    signer = agreement.signers.filter(user=user).first()
    if signer is None:
        raise Http404
    if request.method == "POST":
        origin = Origin.from_request(request)
        action = request.POST.get("action")
        try:
            if action == "send_code":
                signing.signing_code_send(agreement=agreement, user=user, origin=origin)
                messages.success(request, _("A one-time code was sent to %(email)s.") % {"email": user.email})
            elif action in ("sign", "sign_certificate"):
                upload = request.FILES.get("certificate") if action == "sign_certificate" else None
                if action == "sign_certificate" and upload is None:
                    raise ValidationError(_("Choose your certificate file (.p12 or .pfx)."))
                if upload is not None and upload.size > 64 * 1024:
                    raise ValidationError(_("This file is too large to be a certificate file."))
                signing.agreement_sign(
                    agreement=agreement, user=user, document_sha256=request.POST.get("document_sha256", ""),
                    consent=request.POST.get("consent") == "yes", code=request.POST.get("code", ""),
                    pkcs12=upload.read() if upload is not None else None,
                    password=request.POST.get("password", "") if upload is not None else "",
                    origin=origin,
                )
                messages.success(request, _("You signed the mediation agreement."))
                return redirect("agreements:agreement", case.public_id)
            else:
                raise ValidationError(_("Choose what to do."))
        except ValidationError as error:
            _errors(request, error)
        except PermissionDenied:
            messages.error(request, _("You cannot sign this version."))
            return redirect("agreements:agreement", case.public_id)
        return redirect("agreements:sign", case.public_id, agreement.public_id)
    try:
        body = rendering.render_body_html(documents.agreement_document(agreement))
    except ContentDestroyed:
        raise Http404 from None
    return render(request, "agreements/sign.html", {
        "case": case,
        "agreement": agreement,
        "signer": signer,
        "body": body,
        "method": signing.signing_method_for(user),
        "consent_statement": signing.consent_statement(),
        "can_sign": policy.can(user, "agreement.sign", agreement),
        "can_decline": policy.can(user, "agreement.decline", agreement),
    })


@login_required
@require_POST
def decline(request, case_id, agreement_id):
    case = _case(request, case_id, "agreement.view_draft")
    item = _agreement(case, agreement_id)
    service = signing.agreement_withdraw if request.POST.get("action") == "withdraw" else signing.agreement_decline
    try:
        service(agreement=item, user=request.user, reason=request.POST.get("reason", ""),
                origin=Origin.from_request(request))
    except ValidationError as error:
        _errors(request, error)
    except PermissionDenied:
        messages.error(request, _("You cannot decline or withdraw this version."))
    else:
        messages.success(request, _("Signing ended. The signatures given to this version are void; the draft is open for revision."))
    return redirect("agreements:agreement", case.public_id)


@login_required
@require_POST
def file_agreement(request, case_id, agreement_id):
    """Strangers get 404 before any re-authentication prompt."""
    case = _case(request, case_id)
    return _file(request, case, _agreement(case, agreement_id))


@reauthentication_required
def _file(request, case, agreement):
    try:
        filing.filing_submit(
            agreement=agreement, user=request.user, origin=Origin.from_request(request),
            court_case_number=request.POST.get("court_case_number") or None,
        )
    except ValidationError as error:
        _errors(request, error)
    except PermissionDenied:
        messages.error(request, _("You cannot file this agreement."))
    else:
        messages.success(request, _("The agreement is filed with %(court)s.") % {"court": case.court})
    return redirect("agreements:agreement", case.public_id)


@login_required
def frozen_pdf(request, case_id, agreement_id):
    """The frozen PDF a signatory is asked to sign (shown inline)."""
    case = _case(request, case_id, "agreement.view_draft")
    item = _agreement(case, agreement_id)
    try:
        pdf = documents.frozen_pdf(item)
    except ContentDestroyed:
        raise Http404 from None
    return pdf_response(pdf, f"agreement-{case.reference}-v{item.draft.version}-to-sign.pdf", inline=True)


@login_required
def sealed_pdf(request, case_id, agreement_id):
    """The sealed agreement, for the parties and the mediator; audited."""
    case = access_case(request.user, case_id)
    item = _agreement(case, agreement_id)
    if not policy.can(request.user, "agreement.download", item):
        raise Http404
    pdf = issuing.agreement_download(agreement=item, user=request.user, origin=Origin.from_request(request))
    return pdf_response(pdf, f"mediation-agreement-{case.reference}.pdf", inline=False)


def pdf_response(pdf: bytes, filename: str, *, inline: bool) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def verify(request):
    """Public: a verification code (`?code=`) or an uploaded PDF → the
    verdict, the case reference, signers, seal and fingerprints; nothing
    else of the case. Uploads and code look-ups are limited per client
    address (429); the file is checked in a sandbox (agreements/sandbox.py),
    and when this process is already checking as many as it may, the answer
    is to try again shortly (503)."""
    result, code, searched = None, request.GET.get("code", "").strip(), False
    status = 200
    if request.method == "POST":
        limited = _verify_rate_limited(request, scope="verify-upload", rate=settings.ODR_VERIFY_UPLOAD_RATE)
        if limited:
            return limited
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, _("Choose the PDF file to verify."))
        elif upload.size > settings.ODR_VERIFY_MAX_BYTES:
            messages.error(request, _("The file is too large (at most %(mb)d MB).")
                           % {"mb": settings.ODR_VERIFY_MAX_BYTES // (1024 * 1024)})
        else:
            data = upload.read()
            if not data.startswith(b"%PDF-"):
                messages.error(request, _("This is not a PDF file."))
            else:
                try:
                    result, searched = verify_file(data), True
                except sandbox.Busy:
                    messages.error(request, _("Many files are being checked right now. Try again in a few seconds."))
                    status = 503
    elif code:
        limited = _verify_rate_limited(request, scope="verify-code", rate=settings.ODR_VERIFY_CODE_RATE, code=code)
        if limited:
            return limited
        result, searched = verify_code(code), True
        if result is None:
            messages.error(request, _("No sealed agreement has this verification code. Check the code and try again."))
    response = _verify_page(request, result=result, code=code, searched=searched, status=status)
    if status == 503:
        response["Retry-After"] = "5"
    return response


def _verify_page(request, *, result=None, code: str = "", searched: bool = False, status: int = 200) -> HttpResponse:
    return render(request, "agreements/verify.html", {
        "result": result, "code": code, "searched": searched,
        "max_mb": settings.ODR_VERIFY_MAX_BYTES // (1024 * 1024),
    }, status=status)


def _verify_rate_limited(request, *, scope: str, rate: str, code: str = "") -> HttpResponse | None:
    """The 429 page when the client has used up `rate` for `scope`; None otherwise."""
    verdict = rate_limit_hit(scope=scope, key=client_address(request), rate=rate)
    if verdict.allowed:
        return None
    messages.error(request, _("Too many checks from your address. Try again in a minute."))
    response = _verify_page(request, code=code, status=429)
    response["Retry-After"] = str(verdict.retry_after)
    return response
