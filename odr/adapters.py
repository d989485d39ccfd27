from allauth.account.adapter import DefaultAccountAdapter

from odr.tasks import send_email


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
