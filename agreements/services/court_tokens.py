"""Courts' API tokens: created and revoked by administrators, audited; only
the token's SHA-256 is kept."""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from agreements.models import CourtApiToken
from odr.audit import SYSTEM, audit_record
from odr.models import AuditAction, Court, User

TOKEN_PREFIX = "odrc_"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def court_token_create(*, court: Court, name: str, user: User | None) -> tuple[CourtApiToken, str]:
    """A new token for `court`; the token itself is returned once, never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        record = CourtApiToken.objects.create(
            court=court, name=name[:100], prefix=token[: len(TOKEN_PREFIX) + 6], key_sha256=token_digest(token),
            created_by=user,
        )
        audit_record(action=AuditAction.COURT_TOKEN_CREATED, actor=user, origin=SYSTEM, obj=court,
                     details={"token": str(record.public_id), "name": record.name})
    return record, token


def court_token_revoke(*, token: CourtApiToken, user: User | None) -> None:
    with transaction.atomic():
        updated = CourtApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_record(action=AuditAction.COURT_TOKEN_REVOKED, actor=user, origin=SYSTEM, obj=token.court,
                         details={"token": str(token.public_id), "name": token.name})


def court_token_authenticate(token: str) -> CourtApiToken | None:
    """The live token of an active court this string is, or None; notes its use."""
    record = (
        CourtApiToken.objects.select_related("court")
        .filter(key_sha256=token_digest(token), revoked_at__isnull=True, court__is_active=True).first()
    )
    if record is not None:
        CourtApiToken.objects.filter(pk=record.pk).update(last_used_at=timezone.now())
    return record
