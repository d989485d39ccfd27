"""Bearer tokens per court."""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

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


class CourtTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer odrc_…`. The request's `auth` is the token
    (its `court` scopes everything); there is no user."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, token = header.partition(" ")
        if keyword != self.keyword or not token.strip():
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Bearer <token>'.")
        record = (
            CourtApiToken.objects.select_related("court")
            .filter(key_sha256=token_digest(token.strip()), revoked_at__isnull=True, court__is_active=True).first()
        )
        if record is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked token.")
        CourtApiToken.objects.filter(pk=record.pk).update(last_used_at=timezone.now())
        return (None, record)

    def authenticate_header(self, request):
        return self.keyword


class IsCourt(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, CourtApiToken)


class CourtTokenScheme(OpenApiAuthenticationExtension):
    """How the schema describes the token (drf-spectacular)."""

    target_class = "agreements.api.auth.CourtTokenAuthentication"
    name = "courtToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A token of your court, from the platform's administrators."}
