"""Mediation (settlement) agreements. For now: the versioned draft the
mediator writes, sealed with the case's data key like the rest of the case."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions.models import Case


class Draft(models.Model):
    """One version of the draft mediation agreement. Versions are never
    edited: a revision is a new row. The text is sealed (`text_sealed`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="drafts")
    version = models.PositiveIntegerField()
    text_sealed = models.BinaryField(null=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["case", "-version"]
        constraints = [models.UniqueConstraint(fields=["case", "version"], name="one_draft_per_version")]

    def __str__(self):
        return f"{self.case} draft v{self.version}"
