"""Emails are rendered in the recipient's language and handed to the job
queue through a sealed outbox: the job's arguments name an `OutboundEmail`
row, whose subject, body and recipients are sealed with the platform's
"accounts" data key. Nothing an email carries (a reset link, a signing code,
an invitation link) rests readable in the queue, and the row is deleted once
the email has been sent (docs/confidentiality.md, "Emails")."""

import datetime
import json

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation

from odr import crypto
from odr.models import OutboundEmail

KEY_PURPOSE = "accounts"


def outbox_aad(public_id) -> str:
    """The associated data of a sealed email: it opens as no other row."""
    return f"outbox:{public_id}"


def message_enqueue(*, kind: str, subject: str, body: str, to: list[str], html: str | None = None) -> OutboundEmail:
    """Seal one rendered email and queue its delivery, in the caller's
    transaction (an email exists if and only if its cause committed)."""
    from odr.tasks import send_email

    email = OutboundEmail(kind=kind[:128])
    content = {"subject": subject, "body": body, "to": list(to), "html": html}
    email.sealed = crypto.platform_cipher(KEY_PURPOSE).seal_text(json.dumps(content), aad=outbox_aad(email.public_id))
    email.save(force_insert=True)
    send_email.enqueue(email_id=str(email.public_id))
    return email


def email_enqueue(*, to: str, template: str, context: dict, language: str) -> OutboundEmail:
    """Render `<template>_subject.txt` and `<template>_message.txt`; enqueue."""
    with translation.override(language):
        subject = render_to_string(f"{template}_subject.txt", context).strip()
        body = render_to_string(f"{template}_message.txt", context)
    return message_enqueue(kind=template, subject=" ".join(subject.split()), body=body, to=[to])


def outbound_send(*, email_id: str) -> bool:
    """Open one queued email, send it, forget it. False if it is gone
    already (sent, or purged as too old): nothing is sent twice."""
    email = OutboundEmail.objects.filter(public_id=email_id).first()
    if email is None:
        return False
    content = json.loads(crypto.platform_cipher(KEY_PURPOSE).open_text(bytes(email.sealed), aad=outbox_aad(email.public_id)))
    message = EmailMultiAlternatives(content["subject"], content["body"], settings.DEFAULT_FROM_EMAIL, content["to"])
    if content.get("html"):
        message.attach_alternative(content["html"], "text/html")
    message.send()
    OutboundEmail.objects.filter(pk=email.pk).delete()
    return True


def outbox_purge(*, older_than: datetime.timedelta = datetime.timedelta(days=7)) -> int:
    """Emails whose delivery failed and was not retried: after a week their
    links and codes have expired anyway, so the sealed rows go too."""
    deleted, _by_model = OutboundEmail.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
