"""Mediation (settlement) agreements: versioned drafts with comments and
proposals, signing rounds on a frozen PDF, signatures, and the sealed PDF.

Everything said about the agreement while it is negotiated (draft text,
comments, proposals, a reason for declining, the frozen PDF) is sealed with
the case's data key and destroyed with the case. The sealed agreement is the
outcome of the mediation and must outlive it: it is sealed with the
platform's "agreements" key instead, and survives the retention purge."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sessions.models import Case, Participant, Role


class Layout(models.TextChoices):
    KK = "kk", _("Kazakh")
    RU = "ru", _("Russian")
    EN = "en", _("English")
    KK_RU = "kk-ru", _("Kazakh and Russian, side by side")


LAYOUT_LANGUAGES: dict[str, tuple[str, ...]] = {
    Layout.KK: ("kk",), Layout.RU: ("ru",), Layout.EN: ("en",), Layout.KK_RU: ("kk", "ru"),
}


class Draft(models.Model):
    """One version of the draft mediation agreement. Versions are never
    edited: a revision is a new row. The content (its sections in each
    language of the layout, as JSON) is sealed in `text_sealed`."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="drafts")
    version = models.PositiveIntegerField()
    layout = models.CharField(max_length=8, choices=Layout.choices, default=Layout.RU)
    text_sealed = models.BinaryField(null=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["case", "-version"]
        constraints = [models.UniqueConstraint(fields=["case", "version"], name="one_draft_per_version")]

    def __str__(self):
        return f"{self.case} draft v{self.version}"

    @property
    def languages(self) -> tuple[str, ...]:
        return LAYOUT_LANGUAGES[self.layout]


class CommentKind(models.TextChoices):
    COMMENT = "comment", _("Comment")
    PROPOSAL = "proposal", _("Proposed change")


class DraftComment(models.Model):
    """A comment on a draft version, or a proposed wording for one of its
    sections. Both sealed."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices)
    kind = models.CharField(max_length=8, choices=CommentKind.choices, default=CommentKind.COMMENT)
    # For a proposal: which section ("<language>.<field>") it rewrites.
    section = models.CharField(max_length=32, blank=True)
    text_sealed = models.BinaryField(null=True, editable=False)
    proposal_sealed = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class AgreementStatus(models.TextChoices):
    SIGNING = "signing", _("Frozen, being signed")
    DECLINED = "declined", _("Declined by a signatory")
    WITHDRAWN = "withdrawn", _("Withdrawn from signing by the mediator")
    SEALING = "sealing", _("Signed by all; being sealed")
    SEALED = "sealed", _("Signed and sealed")


OPEN_AGREEMENT_STATUSES = (AgreementStatus.SIGNING, AgreementStatus.SEALING)


class Agreement(models.Model):
    """A draft version frozen for signing: the PDF every signatory is shown
    and signs (its SHA-256 recorded), then the sealed PDF.

    States: SIGNING → SEALING → SEALED, or SIGNING → DECLINED / WITHDRAWN
    (the signatures collected are voided and the draft is open for revision).
    A case has at most one agreement in SIGNING or SEALING at a time."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="agreements")
    draft = models.ForeignKey(Draft, on_delete=models.PROTECT, related_name="agreements")
    status = models.CharField(max_length=16, choices=AgreementStatus.choices, default=AgreementStatus.SIGNING)
    layout = models.CharField(max_length=8, choices=Layout.choices)
    verification_code = models.CharField(max_length=24, unique=True)

    frozen_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    frozen_at = models.DateTimeField(default=timezone.now)
    frozen_sha256 = models.CharField(max_length=64)
    # The frozen PDF, and the same PDF with the signatures made with signers'
    # own certificates so far (each an incremental update: the frozen bytes
    # stay its prefix). Case key; destroyed with the case.
    frozen_pdf_sealed = models.BinaryField(null=True, editable=False)
    working_pdf_sealed = models.BinaryField(null=True, editable=False)

    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    end_reason_sealed = models.BinaryField(null=True, editable=False)

    # Sealing: retried from the job queue until done.
    seal_attempts = models.PositiveSmallIntegerField(default=0)
    seal_error = models.CharField(max_length=500, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    sealed_sha256 = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # Platform "agreements" key: survives the case's retention purge.
    sealed_pdf_sealed = models.BinaryField(null=True, editable=False)

    class Meta:
        ordering = ["-frozen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=Q(status__in=["signing", "sealing"]), name="one_open_agreement_per_case"
            ),
            models.UniqueConstraint(
                fields=["case"], condition=Q(status="sealed"), name="one_sealed_agreement_per_case"
            ),
        ]

    def __str__(self):
        return f"{self.case} agreement (v{self.draft.version}, {self.status})"


class SignatureMethod(models.TextChoices):
    EMAIL_CODE = "email_code", _("One-time code sent by email")
    TOTP = "totp", _("One-time code from an authenticator app (TOTP)")
    CERTIFICATE = "certificate", _("Own digital signature certificate (PKCS#12)")


class SignerStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting signature")
    SIGNED = "signed", _("Signed")
    DECLINED = "declined", _("Declined")
    VOID = "void", _("Signature voided")


class Signer(models.Model):
    """One signatory of an agreement (each party and the mediator), fixed when
    the version is frozen, with their own status; once signed: how, when,
    from where, and the SHA-256 of the document they were shown."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="signers")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=SignerStatus.choices, default=SignerStatus.PENDING)

    signed_at = models.DateTimeField(null=True, blank=True)
    method = models.CharField(max_length=16, choices=SignatureMethod.choices, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    consent_sha256 = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # Own-certificate signatures: which certificate (never the key).
    certificate_subject = models.CharField(max_length=500, blank=True)
    certificate_issuer = models.CharField(max_length=500, blank=True)
    certificate_serial = models.CharField(max_length=80, blank=True)
    certificate_sha256 = models.CharField(max_length=64, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["agreement", "position"]
        constraints = [
            models.UniqueConstraint(fields=["agreement", "participant"], name="one_signer_per_participant"),
            models.UniqueConstraint(fields=["agreement", "position"], name="one_signer_per_position"),
        ]

    @property
    def field_name(self) -> str:
        return f"Signature{self.position}"


class SigningCode(models.Model):
    """A one-time code sent by email to sign one agreement. Only its HMAC is
    kept; it expires, dies after a few wrong tries, and works once."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code_hmac = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
