import base64

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter

from odr import crypto
from odr.tasks import send_email

_SEALED_PREFIX = "odr1:"
_MFA_AAD = "accounts:mfa-secret"


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's emails (verification, password reset) go through the
        durable queue like every other email."""
        message = self.render_mail(template_prefix, email, context)
        html = None
        for content, mimetype in getattr(message, "alternatives", []):
            if mimetype == "text/html":
                html = content
        send_email.enqueue(subject=message.subject, body=message.body, to=list(message.to), html=html)

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
