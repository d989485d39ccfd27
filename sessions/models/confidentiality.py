"""Confidentiality: the undertaking each person accepts before entering a
case's rooms, legal holds that suspend the destruction of content, and
administrators' break-glass access to it."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sessions.models.case import Case, Participant, TextAcceptance

__all__ = ["ConfidentialityUndertaking", "LegalHold", "BreakGlassAccess"]


class ConfidentialityUndertaking(TextAcceptance):
    """Who accepted which version of the undertaking for a case, when, and
    from where. A new version of the text must be accepted again."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="undertakings")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="undertakings")

    class Meta(TextAcceptance.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "text_version"], name="one_undertaking_per_version"
            ),
        ]


class LegalHold(models.Model):
    """While a hold is in force (not lifted) the case's content is kept past
    its retention date."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="legal_holds")
    reason = models.CharField(max_length=1000)
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    placed_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=Q(lifted_at__isnull=True), name="one_legal_hold_in_force"
            ),
        ]


class BreakGlassAccess(models.Model):
    """An administrator's time-limited, reasoned, audited reading of a case's
    content; the case's mediator is told."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="break_glass")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=1000)
    opened_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-opened_at", "-id"]

    @property
    def in_force(self) -> bool:
        return self.expires_at > timezone.now()
