from django.contrib import messages
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.shortcuts import redirect
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _

from odr import policy

# Paths a user who still has to set up 2FA may reach: the account pages
# (including the 2FA set-up itself), language switching, health and assets.
_MFA_OPEN_PREFIXES = ("/accounts/", "/i18n/", "/static/", "/healthz", "/readyz", "/profile/language")


class UserLanguageMiddleware:
    """A signed-in user's preferred language wins over the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.preferred_language:
            translation.activate(user.preferred_language)
            request.LANGUAGE_CODE = user.preferred_language
        return self.get_response(request)


class MfaEnforcementMiddleware:
    """Mediators, court users and admins set up 2FA before any work page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(_MFA_OPEN_PREFIXES)
            and policy.mfa_required(user)
        ):
            messages.warning(
                request,
                _("Your role requires two-factor authentication. Set up an authenticator app to continue."),
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)


class CsrfViewMiddleware(DjangoCsrfViewMiddleware):
    """Django's CSRF protection, compatible with `Referrer-Policy: no-referrer`.

    Under that policy browsers send no Referer and `Origin: null` even on
    same-origin form posts, which Django would refuse. A request the browser
    itself marks `Sec-Fetch-Site: same-origin` (a header pages cannot set)
    passes the origin and referer checks; the CSRF token is still required."""

    @staticmethod
    def _same_origin_fetch(request) -> bool:
        return request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"

    def _origin_verified(self, request):
        if request.META.get("HTTP_ORIGIN") == "null" and self._same_origin_fetch(request):
            return True
        return super()._origin_verified(request)

    def _check_referer(self, request):
        if "HTTP_REFERER" not in request.META and self._same_origin_fetch(request):
            return
        super()._check_referer(request)


class ApiErrorsAsJsonMiddleware:
    """The court API and the Torelik callback answer errors in JSON, always:
    never Django's HTML error pages, and never, under DEBUG, the technical
    page that lists a frame's variables (docs/court-api.md). Outermost, so
    that it sees every answer, an unmatched URL's 404 included."""

    PREFIX = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith(self.PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            code = "server_error" if status >= 500 else {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
            detail = "Something went wrong on our side; try again later." if status >= 500 else (
                response.reason_phrase or "The request was refused."
            )
            response = JsonResponse({"detail": detail, "code": code}, status=status)
        return response


class NeverCacheMiddleware:
    """Pages are personal (a case, a room, an agreement, a filing): no
    browser or proxy keeps a copy (`Cache-Control: private, no-store`).
    Static files, served before this middleware, keep their long caching;
    a response that set its own Cache-Control keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        return response
