from django.contrib import messages
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.shortcuts import redirect
from django.utils import translation
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
