import base64
import hashlib
import time

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings
from django.core.cache import cache

from odr import crypto
from odr.mail import message_enqueue
from odr.services import login_failures_notify

_SEALED_PREFIX = "odr1:"
_MFA_AAD = "accounts:mfa-secret"


class AccountAdapter(DefaultAccountAdapter):
    """Failed sign-ins are throttled per address, not per account: anyone who
    knows a mediator's email could otherwise lock them out before a session.
    allauth's per-key limit (ACCOUNT_RATE_LIMITS "login_failed", 5 per 5
    minutes) counts an account *from one address*; the per-address limit
    (10 a minute) spans accounts. Across all addresses an account takes at
    most ODR_LOGIN_FAILURES_CEILING failures an hour (a brute force spread
    over many addresses), and its owner is told by email when
    ODR_LOGIN_FAILURES_NOTICE failures have piled up within the hour."""

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        return f"{super()._get_login_attempts_cache_key(request, **credentials)}:{self.get_client_ip(request)}"

    @staticmethod
    def _account_failures_key(**credentials) -> str:
        login = str(credentials.get("email", credentials.get("username", ""))).lower()
        digest = hashlib.sha256(login.encode("utf-8", "surrogatepass")).hexdigest()
        return f"login-failures:{int(time.time() // 3600)}:{digest}"

    def pre_authenticate(self, request, **credentials):
        super().pre_authenticate(request, **credentials)
        failures = cache.get(self._account_failures_key(**credentials), 0)
        if failures >= settings.ODR_LOGIN_FAILURES_CEILING:
            self._rollback_login_failed_rl_usage()
            raise self.validation_error("too_many_login_attempts")

    def authentication_failed(self, request, **credentials):
        key = self._account_failures_key(**credentials)
        cache.add(key, 0, timeout=2 * 3600)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=2 * 3600)
            failures = 1
        if failures == settings.ODR_LOGIN_FAILURES_NOTICE:
            login_failures_notify(
                email=str(credentials.get("email", "")), failures=failures, ip=self.get_client_ip(request)
            )

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's emails (verification, password reset) go through the
        durable queue like every other email."""
        message = self.render_mail(template_prefix, email, context)
        html = None
        for content, mimetype in getattr(message, "alternatives", []):
            if mimetype == "text/html":
                html = content
        message_enqueue(
            kind=template_prefix, subject=message.subject, body=message.body, to=list(message.to), html=html
        )

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=False)
        user.display_name = form.cleaned_data["display_name"]
        user.preferred_language = form.cleaned_data["preferred_language"]
        if commit:
            user.save()
        return user


class MFAAdapter(DefaultMFAAdapter):
    """2FA secrets (the TOTP key, recovery-code seed) are stored sealed with
    the platform's "accounts" data key, under the master key like the cases'
    content. Secrets stored before this read as they are."""

    def encrypt(self, text: str) -> str:
        blob = crypto.platform_cipher("accounts").seal_text(text, aad=_MFA_AAD)
        return _SEALED_PREFIX + base64.urlsafe_b64encode(blob).decode("ascii")

    def decrypt(self, encrypted_text: str) -> str:
        if not encrypted_text.startswith(_SEALED_PREFIX):
            return encrypted_text
        blob = base64.urlsafe_b64decode(encrypted_text[len(_SEALED_PREFIX):])
        return crypto.platform_cipher("accounts").open_text(blob, aad=_MFA_AAD)
