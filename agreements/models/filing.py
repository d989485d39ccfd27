"""Filing a sealed mediation agreement with the court of the case.

A filing is delivered through an adapter (the built-in court portal, or an
external judicial system such as Torelik) from a durable outbox, and its
status then moves as the court answers: QUEUED → DELIVERED → RECEIVED →
APPROVED | RETURNED (with the court's reason). A returned filing can be
corrected and filed again (a new filing that replaces it)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from agreements.models.agreement import Agreement
from odr.models import Court
from sessions.models import Case

__all__ = [
    "FilingStatus", "OPEN_FILING_STATUSES", "COURT_ANSWERS", "FILING_TRANSITIONS", "Filing", "FilingEvent", "DeliveryState", "Delivery",
    "CourtApiToken", "CallbackReceipt",
]


class FilingStatus(models.TextChoices):
    QUEUED = "queued", _("Queued for delivery")
    DELIVERED = "delivered", _("Delivered to the court")
    RECEIVED = "received", _("Received by the court")
    APPROVED = "approved", _("Approved by the court")
    RETURNED = "returned", _("Returned by the court")
    FAILED = "failed", _("Delivery failed")


OPEN_FILING_STATUSES = (FilingStatus.QUEUED, FilingStatus.DELIVERED, FilingStatus.RECEIVED, FilingStatus.APPROVED)
# What a court answers (portal, API, callbacks).
COURT_ANSWERS = (FilingStatus.RECEIVED, FilingStatus.APPROVED, FilingStatus.RETURNED)

# Which status may follow which; a court's answer that would go backwards
# (an out-of-order callback) is refused.
FILING_TRANSITIONS: dict[str, frozenset[str]] = {
    FilingStatus.QUEUED: frozenset({FilingStatus.DELIVERED, FilingStatus.FAILED, FilingStatus.RECEIVED}),
    FilingStatus.DELIVERED: frozenset({FilingStatus.RECEIVED, FilingStatus.APPROVED, FilingStatus.RETURNED}),
    FilingStatus.RECEIVED: frozenset({FilingStatus.APPROVED, FilingStatus.RETURNED}),
    FilingStatus.APPROVED: frozenset(),
    FilingStatus.RETURNED: frozenset(),
    FilingStatus.FAILED: frozenset(),
}


class Filing(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="filings")
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="filings")
    court = models.ForeignKey(Court, on_delete=models.PROTECT, related_name="filings")
    court_case_number = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=FilingStatus.choices, default=FilingStatus.QUEUED)
    # The adapter that delivers it (settings.ODR_FILING_ADAPTERS key), fixed at filing.
    channel = models.CharField(max_length=32)
    # Sent with every delivery attempt: the receiving system files it once.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(max_length=128, blank=True)
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    filed_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    return_reason = models.TextField(blank=True)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )

    class Meta:
        ordering = ["-filed_at"]
        indexes = [models.Index(fields=["court", "status_changed_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement"], condition=Q(status__in=["queued", "delivered", "received", "approved"]),
                name="one_open_filing_per_agreement",
            ),
        ]

    def __str__(self):
        return f"filing of {self.case} with {self.court} ({self.status})"


class FilingEvent(models.Model):
    """Every status a filing went through, who or what moved it, and why.
    `sequence` is global and increasing: the court API's cursor."""

    class Source(models.TextChoices):
        PARTICIPANT = "participant", _("Party or mediator")
        PORTAL = "portal", _("Court portal")
        API = "api", _("Court API")
        CALLBACK = "callback", _("Judicial system callback")
        SYSTEM = "system", _("Platform")

    filing = models.ForeignKey(Filing, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=16, choices=FilingStatus.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Waiting to be delivered")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Gave up (dead letter)")


class Delivery(models.Model):
    """The outbox row of a filing: written in the transaction that files it,
    processed by the worker with retries (exponential backoff with jitter)
    until delivered or, after ODR_DELIVERY_MAX_ATTEMPTS, dead."""

    filing = models.OneToOneField(Filing, on_delete=models.CASCADE, related_name="delivery")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"])]


class CourtApiToken(models.Model):
    """A court's key to the court API. Only its SHA-256 is stored; the token
    is shown once, when an administrator creates it. It reaches the filings
    of its own court only, until revoked."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    court = models.ForeignKey(Court, on_delete=models.PROTECT, related_name="api_tokens", verbose_name=_("court"))
    name = models.CharField(_("name"), max_length=100, help_text=_("Which system of the court uses it."))
    prefix = models.CharField(max_length=12, editable=False)
    key_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["court", "-created_at"]
        verbose_name = _("court API token")
        verbose_name_plural = _("court API tokens")

    def __str__(self):
        return f"{self.court} · {self.name} ({self.prefix}…)"


class CallbackReceipt(models.Model):
    """Each status callback of an external judicial system, by its event id:
    taken once, so a replayed callback changes nothing."""

    event_id = models.CharField(max_length=128, unique=True)
    filing = models.ForeignKey(Filing, on_delete=models.CASCADE, related_name="callbacks")
    status = models.CharField(max_length=16, choices=FilingStatus.choices)
    received_at = models.DateTimeField(default=timezone.now)
