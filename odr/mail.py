"""Emails are rendered in the recipient's language and handed to the job queue."""

from django.template.loader import render_to_string
from django.utils import translation

from odr.tasks import send_email


def email_enqueue(*, to: str, template: str, context: dict, language: str) -> None:
    """Render `<template>_subject.txt` and `<template>_message.txt`; enqueue."""
    with translation.override(language):
        subject = render_to_string(f"{template}_subject.txt", context).strip()
        body = render_to_string(f"{template}_message.txt", context)
    send_email.enqueue(subject=" ".join(subject.split()), body=body, to=[to])
