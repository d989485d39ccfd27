"""Freezing a draft for signing, and signing it: every party and the
mediator sign the same frozen PDF (its SHA-256 recorded), after recent
re-authentication (the views), reading it, an explicit consent, and a
one-time code (by email, or the signer's TOTP) or their own certificate.

States are explicit (models.AgreementStatus) and every change is one
transaction under the agreement's row lock, so concurrent signers queue and
a crash leaves either the old state or the new one. The last signature moves
the agreement to SEALING and queues the sealing job on commit."""

import datetime
import hashlib
import secrets

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from agreements import certificates, rendering
from agreements.models import (
    OPEN_AGREEMENT_STATUSES,
    Agreement,
    AgreementStatus,
    Draft,
    SignatureMethod,
    Signer,
    SignerStatus,
    SigningCode,
)
from agreements.sealing import pades_sign
from agreements.services.documents import agreement_key, notify_signatories, working_pdf
from agreements.services.drafts import draft_content, draft_missing_sections, section_label
from agreements.services.issuing import agreement_sealing_start
from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.crypto import secrets_equal
from odr.mail import email_enqueue
from odr.models import AuditAction, User
from sessions.models import Case
from sessions.services.confidentiality import case_cipher
from sessions.services.errors import ProcedureError
from sessions.services.procedure import atm_signatories, lock_case

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32
CODE_MAX_ATTEMPTS = 5
CODE_RESEND_SECONDS = 60
REASON_MAX_CHARS = 2_000

CONSENT_VERSION = "2026.1"


def consent_statement() -> str:
    """What a signer confirms, in the language of the page they sign on."""
    return _(
        "I have read the mediation agreement shown above, in the version with the SHA-256 fingerprint "
        "given. I sign it electronically of my own free will, and I agree that my electronic signature "
        "binds me as my handwritten signature would."
    )


def consent_digest(statement: str) -> str:
    return hashlib.sha256(f"{CONSENT_VERSION}\n{statement}".encode()).hexdigest()


def verification_code_new() -> str:
    """16 characters of base 32 (80 bits), as XXXX-XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def verification_code_normalise(code: str) -> str:
    """What a person types (lower case, spaces, O for 0, I or L for 1) → the stored form."""
    raw = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    raw = raw.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def agreement_freeze(*, case: Case, user: User, draft: Draft, origin: Origin = SYSTEM) -> Agreement:
    """Freeze the latest version for signing: render its PDF, record the
    PDF's SHA-256, and fix who must sign (every party and the mediator)."""
    policy.require(user, "agreement.freeze", case)
    with transaction.atomic():
        case = lock_case(case)
        if case.agreements.filter(status__in=OPEN_AGREEMENT_STATUSES).exists():
            raise ProcedureError(_("A version is already being signed."), code="already_frozen")
        latest = case.drafts.first()
        if latest is None or latest.pk != draft.pk:
            raise ProcedureError(
                _("Only the latest version can be frozen; a newer one was saved meanwhile."), code="stale_draft"
            )
        missing = draft_missing_sections(draft)
        if missing:
            raise ProcedureError(
                _("Fill in every section before freezing: %(sections)s.")
                % {"sections": ", ".join(section_label(key) for key in missing)},
                code="incomplete",
            )
        signatories = list(atm_signatories(case).order_by("role", "created_at", "pk"))
        order = {"claimant": 0, "respondent": 1, "mediator": 2}
        signatories.sort(key=lambda p: order.get(p.role, 3))
        agreement = Agreement(
            case=case, draft=draft, layout=draft.layout, frozen_by=user, verification_code=verification_code_new()
        )
        people = [
            rendering.Person(name=p.user.display_name, role=p.role, field=f"Signature{position}")
            for position, p in enumerate(signatories, start=1)
        ]
        document = rendering.document_context(
            reference=case.reference or "", layout=draft.layout, content=draft_content(draft), people=people,
            date=timezone.localdate(agreement.frozen_at), verification_code=agreement.verification_code,
        )
        pdf = rendering.render_frozen_pdf(document)
        agreement.frozen_sha256 = hashlib.sha256(pdf).hexdigest()
        agreement.frozen_pdf_sealed = case_cipher(case).seal(pdf, aad=agreement_key(agreement, "frozen"))
        agreement.save(force_insert=True)
        Signer.objects.bulk_create([
            Signer(agreement=agreement, participant=p, user=p.user, role=p.role, position=position)
            for position, p in enumerate(signatories, start=1)
        ])
        audit_record(
            action=AuditAction.AGREEMENT_FROZEN, actor=user, origin=origin, obj=case,
            details={"agreement": str(agreement.public_id), "version": draft.version,
                     "sha256": agreement.frozen_sha256, "signers": len(signatories)},
        )
        notify_signatories(case, "agreements/email/frozen", exclude=user, version=draft.version)
    return agreement


def _lock(agreement: Agreement) -> Agreement:
    return Agreement.objects.select_for_update().select_related("case", "draft").get(pk=agreement.pk)


def _check_signable(agreement: Agreement, user: User, document_sha256: str) -> Signer:
    """The signer, or why not: the version shown must still be the one being signed."""
    if agreement.status != AgreementStatus.SIGNING or not secrets_equal(
        (document_sha256 or "").lower(), agreement.frozen_sha256
    ):
        raise ProcedureError(
            _("The document changed after it was shown to you, or is no longer being signed. "
              "Nothing was signed: read the current version and sign again."),
            code="stale_document",
        )
    policy.require(user, "agreement.sign", agreement)
    return agreement.signers.get(user=user)


def signing_method_for(user: User) -> str:
    """A one-time code from the user's authenticator app if they use 2FA,
    otherwise one sent by email."""
    if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        return SignatureMethod.TOTP
    return SignatureMethod.EMAIL_CODE


def _code_hmac(agreement: Agreement, user: User, code: str) -> str:
    return salted_hmac("agreements.signing-code", f"{agreement.pk}:{user.pk}:{code}", algorithm="sha256").hexdigest()


def signing_code_send(*, agreement: Agreement, user: User, origin: Origin = SYSTEM) -> None:
    """Email the signer a one-time code for this agreement (the previous one dies)."""
    with transaction.atomic():
        agreement = _lock(agreement)
        policy.require(user, "agreement.sign", agreement)
        now = timezone.now()
        last = SigningCode.objects.filter(agreement=agreement, user=user).first()
        if last is not None and (now - last.created_at).total_seconds() < CODE_RESEND_SECONDS:
            raise ProcedureError(
                _("A code was sent less than a minute ago. Check your email, or wait a minute and ask again."),
                code="too_soon",
            )
        SigningCode.objects.filter(agreement=agreement, user=user, used_at__isnull=True).update(used_at=now)
        code = f"{secrets.randbelow(10**6):06d}"
        minutes = settings.ODR_SIGNING_CODE_MINUTES
        SigningCode.objects.create(
            agreement=agreement, user=user, code_hmac=_code_hmac(agreement, user, code),
            expires_at=now + datetime.timedelta(minutes=minutes),
        )
        audit_record(
            action=AuditAction.AGREEMENT_CODE_SENT, actor=user, origin=origin, obj=agreement.case,
            details={"agreement": str(agreement.public_id)},
        )
        email_enqueue(
            to=user.email, template="agreements/email/signing_code", language=user.preferred_language,
            context={"case": agreement.case, "code": code, "minutes": minutes,
                     "sha256": agreement.frozen_sha256, "site_url": settings.SITE_URL},
        )


def _record_refusal(agreement: Agreement, user: User, origin: Origin, reason: str) -> None:
    audit_record(
        action=AuditAction.AGREEMENT_SIGNING_REFUSED, actor=user, origin=origin, obj=agreement.case,
        details={"agreement": str(agreement.public_id), "reason": reason},
    )


def _check_code(agreement: Agreement, user: User, method: str, code: str, origin: Origin) -> None:
    """In its own transaction, so that a wrong try is counted and audited
    although the signing is refused."""
    code = "".join((code or "").split())
    if not code:
        raise ProcedureError(_("Enter the one-time code."), code="no_code")
    refusal = ""
    with transaction.atomic():
        if method == SignatureMethod.TOTP:
            authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
            if not TOTP(authenticator).validate_code(code):
                _record_refusal(agreement, user, origin, "wrong_totp")
                refusal = _("The code from your authenticator app is wrong or was already used.")
        else:
            now = timezone.now()
            stored = (
                SigningCode.objects.select_for_update()
                .filter(agreement=agreement, user=user, used_at__isnull=True).first()
            )
            if stored is None:
                raise ProcedureError(_("Ask for a code first: none is waiting for you."), code="no_code")
            if stored.expires_at <= now or stored.attempts >= CODE_MAX_ATTEMPTS:
                raise ProcedureError(_("This code has expired. Ask for a new one."), code="expired_code")
            if secrets_equal(_code_hmac(agreement, user, code), stored.code_hmac):
                stored.used_at = now
                stored.save(update_fields=["used_at"])
            else:
                stored.attempts += 1
                stored.save(update_fields=["attempts"])
                _record_refusal(agreement, user, origin, "wrong_code")
                left = CODE_MAX_ATTEMPTS - stored.attempts
                refusal = (
                    _("The code is wrong. Tries left: %(left)d.") % {"left": left}
                    if left else _("The code is wrong, and it is now void. Ask for a new one.")
                )
    if refusal:
        raise ProcedureError(refusal, code="wrong_code")


def agreement_sign(
    *, agreement: Agreement, user: User, document_sha256: str, consent: bool, code: str = "",
    pkcs12: bytes | None = None, password: str = "", origin: Origin = SYSTEM,
) -> Signer:
    """Sign the frozen version the signer was shown (`document_sha256`), with
    a one-time code or, when `pkcs12` is given, with their own certificate
    (used in memory for this call only)."""
    if not consent:
        raise ProcedureError(_("Confirm the statement above to sign."), code="no_consent")
    with transaction.atomic():  # fail early, before a code is spent
        _check_signable(_lock(agreement), user, document_sha256)
    personal = None
    if pkcs12 is not None:
        method = SignatureMethod.CERTIFICATE
        try:
            personal = certificates.certificate_open(pkcs12, password)
            certificates.certificate_check(personal, at=timezone.now())
        except ProcedureError as error:
            with transaction.atomic():
                _record_refusal(agreement, user, origin, error.code or "certificate")
            raise
    else:
        method = signing_method_for(user)
        _check_code(agreement, user, method, code, origin)
    with transaction.atomic():
        agreement = _lock(agreement)
        signer = _check_signable(agreement, user, document_sha256)
        now = timezone.now()
        if personal is not None:
            pdf = pades_sign(
                working_pdf(agreement), signer=personal.signer, field=signer.field_name,
                reason=_signature_reason(signer, method),
                stamp=rendering.stamp_text(name=user.display_name, role=signer.role, method=method,
                                           signed_at=now, layout=agreement.layout),
            )
            agreement.working_pdf_sealed = case_cipher(agreement.case).seal(pdf, aad=agreement_key(agreement, "working"))
            agreement.save(update_fields=["working_pdf_sealed"])
            signer.certificate_subject = personal.subject[:500]
            signer.certificate_issuer = personal.issuer[:500]
            signer.certificate_serial = personal.serial[:80]
            signer.certificate_sha256 = personal.sha256
        signer.status = SignerStatus.SIGNED
        signer.signed_at = now
        signer.method = method
        signer.document_sha256 = agreement.frozen_sha256
        signer.consent_sha256 = consent_digest(consent_statement())
        signer.ip = origin.ip
        signer.user_agent = (origin.user_agent or "")[:512]
        signer.save()
        audit_record(
            action=AuditAction.AGREEMENT_SIGNED, actor=user, origin=origin, obj=agreement.case,
            details={"agreement": str(agreement.public_id), "role": signer.role, "method": method,
                     "sha256": agreement.frozen_sha256},
        )
        if not agreement.signers.exclude(status=SignerStatus.SIGNED).exists():
            agreement_sealing_start(agreement)
    return signer


def _signature_reason(signer: Signer, method: str) -> str:
    return f"{signer.user.display_name} ({signer.role}), {method}"


def _end(*, agreement: Agreement, user: User, status: str, reason: str, action: str, origin: Origin,
         signer_status: str | None = None) -> Agreement:
    now = timezone.now()
    agreement.status = status
    agreement.ended_at = now
    agreement.ended_by = user
    agreement.end_reason_sealed = case_cipher(agreement.case).seal_text(reason, aad=agreement_key(agreement, "reason"))
    agreement.save(update_fields=["status", "ended_at", "ended_by", "end_reason_sealed"])
    agreement.signers.filter(status=SignerStatus.SIGNED).update(status=SignerStatus.VOID, voided_at=now)
    if signer_status:
        agreement.signers.filter(user=user).update(status=signer_status)
    SigningCode.objects.filter(agreement=agreement, used_at__isnull=True).update(used_at=now)
    audit_record(
        action=action, actor=user, origin=origin, obj=agreement.case,
        details={"agreement": str(agreement.public_id), "version": agreement.draft.version},
    )
    return agreement


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ProcedureError(_("Give a reason, so that the mediator can revise the draft."), code="no_reason")
    if len(reason) > REASON_MAX_CHARS:
        raise ProcedureError(_("The reason can be at most %(limit)d characters long.") % {"limit": REASON_MAX_CHARS})
    return reason


def agreement_decline(*, agreement: Agreement, user: User, reason: str, origin: Origin = SYSTEM) -> Agreement:
    """A signatory declines to sign: the round ends, every signature collected
    for it is voided, and the draft is open for revision."""
    reason = _reason(reason)
    with transaction.atomic():
        agreement = _lock(agreement)
        if agreement.status != AgreementStatus.SIGNING:
            raise ProcedureError(_("This version is no longer being signed."), code="not_signing")
        policy.require(user, "agreement.decline", agreement)
        _end(agreement=agreement, user=user, status=AgreementStatus.DECLINED, reason=reason,
             action=AuditAction.AGREEMENT_DECLINED, origin=origin, signer_status=SignerStatus.DECLINED)
        notify_signatories(agreement.case, "agreements/email/declined", exclude=user, version=agreement.draft.version)
    return agreement


def agreement_withdraw(*, agreement: Agreement, user: User, reason: str, origin: Origin = SYSTEM) -> Agreement:
    """The mediator takes a frozen version back from signing (to correct it)."""
    reason = _reason(reason)
    with transaction.atomic():
        agreement = _lock(agreement)
        if agreement.status != AgreementStatus.SIGNING:
            raise ProcedureError(_("This version is no longer being signed."), code="not_signing")
        policy.require(user, "agreement.withdraw", agreement)
        _end(agreement=agreement, user=user, status=AgreementStatus.WITHDRAWN, reason=reason,
             action=AuditAction.AGREEMENT_WITHDRAWN, origin=origin)
        notify_signatories(agreement.case, "agreements/email/withdrawn", exclude=user, version=agreement.draft.version)
    return agreement


def agreements_end_with_case(*, sender, case: Case, actor: User | None, origin: Origin, **kwargs) -> None:
    """The mediation ended (withdrawn, not settled) while a version was being
    signed: that round is withdrawn and its signatures voided."""
    for agreement in Agreement.objects.select_for_update().select_related("case", "draft").filter(
        case=case, status=AgreementStatus.SIGNING
    ):
        _end(agreement=agreement, user=actor, status=AgreementStatus.WITHDRAWN,
             reason=_("The mediation ended before everyone signed."), action=AuditAction.AGREEMENT_WITHDRAWN,
             origin=origin)


def agreement_end_reason(agreement: Agreement) -> str:
    if agreement.end_reason_sealed is None:
        return ""
    return case_cipher(agreement.case).open_text(agreement.end_reason_sealed, aad=agreement_key(agreement, "reason"))
