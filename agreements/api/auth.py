"""Bearer tokens per court."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from agreements.models import CourtApiToken
from agreements.services.court_tokens import court_token_authenticate


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
        record = court_token_authenticate(token.strip())
        if record is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked token.")
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
