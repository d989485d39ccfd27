"""No secret an email carries rests readable anywhere: a password-reset link,
an email-verification link, an invitation link and a signing code are
queued, then sent by the real worker; a dump of the database taken while
they wait and another after they were sent, every file of the media
folders, and everything logged meanwhile hold none of them, while the
emails that went out do (the positive control).

On PostgreSQL the database is read with `pg_dump`, as CI does (see
tests/sessions/test_plaintext_absence.py for the SQLite fallback)."""

import json
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from agreements.services import signing
from odr.models import Language, OutboundEmail, Specialisation
from sessions.services import intake
from tests.sessions.test_plaintext_absence import _database_bytes

pytestmark = pytest.mark.django_db(transaction=True)

LINK = re.compile(r"https?://\S+")
NEWCOMER = "newcomer-at-rest@example.kz"
INVITEE = "invitee-at-rest@example.kz"


def _links(message) -> list[str]:
    return LINK.findall(message.body)


def _message_to(outbox, address: str, subject_part: str = ""):
    found = [m for m in outbox if address in m.to and subject_part in m.subject]
    assert found, f"no email to {address} ({subject_part!r}); sent: {[(m.to, m.subject) for m in outbox]}"
    return found[-1]


def _secrets_sent(outbox, party_a) -> dict[str, str]:
    """Each secret as it went out, from the emails themselves."""
    reset_prefix = reverse("account_reset_password") + "key/"
    confirm_prefix = reverse("account_confirm_email", args=["KEY"]).removesuffix("KEY/")
    invitation_prefix = reverse("mediation:invitation", args=["TOKEN"]).removesuffix("TOKEN/")

    def token_after(prefix: str, address: str) -> str:
        for message in [m for m in outbox if address in m.to]:
            for link in _links(message):
                path = urlsplit(link).path
                if path.startswith(prefix):
                    return path.removeprefix(prefix).strip("/")
        raise AssertionError(f"no link under {prefix} was emailed to {address}")

    code_email = _message_to(outbox, party_a.email, "code")
    code = re.search(r"^\s+(\d{6})\s*$", code_email.body, re.M).group(1)
    return {
        "password-reset key": token_after(reset_prefix, party_a.email),
        "email-verification key": token_after(confirm_prefix, NEWCOMER),
        "invitation token": token_after(invitation_prefix, INVITEE),
        # Six digits alone could occur anywhere: the code as its email lays it out.
        "signing code": f"\n    {code}\n",
    }


def _forms(secret: str) -> dict[str, bytes]:
    """The ways a secret would show if stored readable: as text, inside a JSON
    string (a job's arguments), and hex (a bytea column in a dump)."""
    utf8 = secret.encode("utf-8")
    return {"text": utf8, "json": json.dumps(secret)[1:-1].encode("ascii"), "hex": utf8.hex().encode("ascii")}


def _found(blob: bytes, secrets: dict[str, str]) -> list[str]:
    lowered = blob.lower()
    return [
        f"{name} ({form})"
        for name, secret in secrets.items()
        for form, needle in _forms(secret).items()
        if needle in (lowered if form == "hex" else blob)
    ]


def _media_files() -> list[Path]:
    roots = {Path(settings.MEDIA_ROOT), Path(settings.STORAGES["private"]["OPTIONS"]["location"])}
    return sorted(path for root in roots if root.exists() for path in root.rglob("*") if path.is_file())


def test_when_emails_carrying_secrets_are_queued_and_sent_then_no_link_or_code_rests_readable(
    frozen, party_a, mediator, run_jobs, outbox, caplog, origin
):
    caplog.set_level(logging.DEBUG)
    # A password reset, asked for anonymously.
    assert Client().post(reverse("account_reset_password"), {"email": party_a.email}).status_code == 302
    # A sign-up: its email-verification link.
    Client().post(reverse("account_signup"), {
        "email": NEWCOMER, "password1": "a-Strong-pass-2026!", "password2": "a-Strong-pass-2026!",
        "display_name": "Dana Newcomer", "preferred_language": Language.ENGLISH,
    })
    # An application naming someone without an account: the invitation link.
    intake.case_file(
        claimant=party_a,
        application=intake.Application(
            category=Specialisation.CIVIL, description="A dispute about a fence.", language="en",
            other_parties=[intake.OtherParty(name="Ivan Invitee", email=INVITEE)], mediator=mediator,
        ),
        origin=origin,
    )
    # A one-time signing code.
    signing.signing_code_send(agreement=frozen, user=party_a, origin=origin)
    assert OutboundEmail.objects.count() >= 4
    source, while_queued = _database_bytes()

    run_jobs()

    secrets = _secrets_sent(outbox, party_a)
    assert not OutboundEmail.objects.exists()
    _source, after_sending = _database_bytes()
    assert _found(while_queued, secrets) == [], f"secrets readable in the {source} while queued"
    assert _found(after_sending, secrets) == [], f"secrets readable in the {source} after sending"
    for path in _media_files():
        assert _found(path.read_bytes(), secrets) == [], f"secrets readable in {path}"
    assert _found(caplog.text.encode("utf-8"), secrets) == [], "secrets in the logs"
    # The positive control: each secret did go out, and opens what it should.
    assert Client().get(reverse("mediation:invitation", args=[secrets["invitation token"]])).status_code == 200
    assert party_a.email.encode() in after_sending  # the dump is of this database
