"""The mediation procedure: cases, participants, invitations, consents."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from odr.models import Court, Language, Specialisation

__all__ = [
    "CaseStatus", "OPEN_STATUSES", "CLOSED_STATUSES", "TRANSITIONS", "MediatorSelection", "Case",
    "Role", "PARTY_ROLES", "ParticipantStatus", "Participant", "InvitationStatus", "Invitation",
    "TextAcceptance", "AgreementToMediateAcceptance", "ExtensionStatus", "TermExtension", "TermExtensionAnswer",
]


class CaseStatus(models.TextChoices):
    DRAFT = "draft", _("Draft application")
    INVITED = "invited", _("Parties invited")
    ACCEPTED = "accepted", _("Accepted, awaiting the agreement to mediate")
    ACTIVE = "active", _("Mediation in progress")
    SETTLED = "settled", _("Settled")
    NOT_SETTLED = "not_settled", _("Ended without settlement")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    LAPSED = "lapsed", _("Lapsed (no answer in time)")
    DECLINED = "declined", _("Declined by a party")


OPEN_STATUSES = (CaseStatus.DRAFT, CaseStatus.INVITED, CaseStatus.ACCEPTED, CaseStatus.ACTIVE)
CLOSED_STATUSES = tuple(s for s in CaseStatus if s not in OPEN_STATUSES)

# The closed set of allowed transitions; services.procedure enforces it.
TRANSITIONS: dict[str, frozenset[str]] = {
    CaseStatus.DRAFT: frozenset({CaseStatus.INVITED, CaseStatus.WITHDRAWN}),
    CaseStatus.INVITED: frozenset(
        {CaseStatus.ACCEPTED, CaseStatus.DECLINED, CaseStatus.LAPSED, CaseStatus.WITHDRAWN}
    ),
    CaseStatus.ACCEPTED: frozenset({CaseStatus.ACTIVE, CaseStatus.WITHDRAWN}),
    CaseStatus.ACTIVE: frozenset(
        {CaseStatus.SETTLED, CaseStatus.NOT_SETTLED, CaseStatus.WITHDRAWN}
    ),
    CaseStatus.SETTLED: frozenset(),
    CaseStatus.NOT_SETTLED: frozenset(),
    CaseStatus.WITHDRAWN: frozenset(),
    CaseStatus.LAPSED: frozenset(),
    CaseStatus.DECLINED: frozenset(),
}


class MediatorSelection(models.TextChoices):
    CHOSEN = "chosen", _("Chosen by the claimant")
    ASSIGNED = "assigned", _("Assigned by the platform")


class Case(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reference = models.CharField(max_length=32, unique=True, null=True, blank=True)
    category = models.CharField(_("category"), max_length=32, choices=Specialisation.choices)
    description = models.TextField(_("short description of the dispute"), max_length=4000)
    language = models.CharField(_("language of the procedure"), max_length=2, choices=Language.choices)
    court = models.ForeignKey(
        Court, null=True, blank=True, on_delete=models.PROTECT, related_name="cases",
        verbose_name=_("court"),
    )
    court_case_number = models.CharField(_("court case number"), max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.DRAFT)
    mediator_selection = models.CharField(
        max_length=16, choices=MediatorSelection.choices, default=MediatorSelection.CHOSEN
    )
    # While a draft: the mediator the claimant asked for (None: assign one).
    requested_mediator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases_filed"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    term_days = models.PositiveSmallIntegerField(default=30)
    term_started_on = models.DateField(null=True, blank=True)
    term_ends_on = models.DateField(null=True, blank=True)
    # The key that seals this case's content (odr.crypto); destroyed, with the
    # content, ODR_RETENTION_DAYS after closing unless under legal hold.
    data_key = models.OneToOneField(
        "odr.DataKey", null=True, blank=True, on_delete=models.PROTECT, related_name="case"
    )
    content_destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "closed_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(court__isnull=False) | Q(court_case_number=""),
                name="case_number_needs_court",
            ),
        ]

    def __str__(self):
        return self.reference or str(self.public_id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def term_days_left(self, today=None) -> int | None:
        if self.term_ends_on is None:
            return None
        today = today or timezone.localdate()
        return (self.term_ends_on - today).days


class Role(models.TextChoices):
    CLAIMANT = "claimant", _("Claimant")
    RESPONDENT = "respondent", _("Respondent")
    REPRESENTATIVE = "representative", _("Representative")
    MEDIATOR = "mediator", _("Mediator")
    OBSERVER = "observer", _("Observer")


PARTY_ROLES = (Role.CLAIMANT, Role.RESPONDENT)


class ParticipantStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed, awaiting an answer")
    ACTIVE = "active", _("Taking part")
    DECLINED = "declined", _("Declined")
    LAPSED = "lapsed", _("Did not answer in time")
    WITHDRAWN = "withdrawn", _("Withdrew")


class Participant(models.Model):
    """A user's role in one case. A mediator starts as PROPOSED until they accept."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="participations"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    represents = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="representatives"
    )
    status = models.CharField(
        max_length=16, choices=ParticipantStatus.choices, default=ParticipantStatus.ACTIVE
    )
    respond_by = models.DateTimeField(null=True, blank=True)
    decline_reason = models.CharField(max_length=500, blank=True)
    # A party's email and phone are shown to the other side only if they say so.
    shares_contacts = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A user holds at most one live role in a case; declined mediators
            # stay on record and cannot be proposed again.
            models.UniqueConstraint(fields=["case", "user"], name="one_role_per_user_per_case"),
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(role="mediator", status__in=["proposed", "active"]),
                name="one_live_mediator_per_case",
            ),
            models.CheckConstraint(
                condition=Q(role="representative", represents__isnull=False)
                | (~Q(role="representative") & Q(represents__isnull=True)),
                name="representative_represents_a_party",
            ),
        ]

    def __str__(self):
        return f"{self.user} — {self.get_role_display()}"

    @property
    def is_party(self) -> bool:
        return self.role in PARTY_ROLES


class InvitationStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting an answer")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    LAPSED = "lapsed", _("Lapsed")
    REVOKED = "revoked", _("Revoked")


class Invitation(models.Model):
    """An emailed, single-use, expiring invitation to join a case in a role."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=Role.choices)
    name = models.CharField(_("name"), max_length=150)
    email = models.EmailField(_("email"))
    represents = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.CharField(max_length=500, blank=True)
    participant = models.OneToOneField(
        Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitation"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "email"],
                condition=Q(status__in=["pending", "accepted"]),
                name="one_live_invitation_per_email_per_case",
            ),
        ]

    def __str__(self):
        return f"{self.name} <{self.email}> — {self.get_role_display()}"


class TextAcceptance(models.Model):
    """Who accepted which version of a text, as shown (its SHA-256), when and
    from where."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text_version = models.CharField(max_length=32)
    text_language = models.CharField(max_length=2, choices=Language.choices)
    text_sha256 = models.CharField(max_length=64)
    accepted_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        abstract = True
        ordering = ["accepted_at", "id"]


class AgreementToMediateAcceptance(TextAcceptance):
    """A participant's acceptance of the agreement to mediate, with the exact text."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="atm_acceptances")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")

    class Meta(TextAcceptance.Meta):
        constraints = [
            models.UniqueConstraint(fields=["case", "participant"], name="one_atm_acceptance_each"),
        ]


class ExtensionStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting consent")
    APPROVED = "approved", _("Approved by all parties")
    REFUSED = "refused", _("Refused")


class TermExtension(models.Model):
    """A proposal to extend the term; it takes effect when every party consents."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="term_extensions")
    proposed_by = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    new_ends_on = models.DateField(_("new end of the term"))
    reason = models.CharField(_("reason"), max_length=500)
    status = models.CharField(
        max_length=16, choices=ExtensionStatus.choices, default=ExtensionStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=Q(status="pending"), name="one_pending_extension_per_case"
            ),
        ]


class TermExtensionAnswer(models.Model):
    extension = models.ForeignKey(TermExtension, on_delete=models.CASCADE, related_name="answers")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    consents = models.BooleanField()
    answered_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["extension", "participant"], name="one_answer_per_party_per_extension"
            ),
        ]
