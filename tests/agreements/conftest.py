"""Fixtures of the agreements tests: a PKI of the test's own, a case with a
complete draft, signing helpers."""

import io
import re

import pytest
from django.core import mail
from django.core.management import call_command

from agreements.services import drafts, signing


@pytest.fixture
def dev_pki(settings, tmp_path):
    """A development CA and seal of this test's own, as make_dev_ca writes them."""
    settings.ODR_PKI_DIR = tmp_path / "pki"
    settings.ODR_SEAL_PKCS12 = str(tmp_path / "pki" / "seal.p12")
    settings.ODR_SEAL_PASSPHRASE = "test-seal-passphrase"
    settings.ODR_TRUST_ROOTS = [str(tmp_path / "pki" / "ca.pem")]
    settings.ODR_SIGNER_TRUST_ROOTS = [str(tmp_path / "pki" / "ca.pem")]
    call_command("make_dev_ca", stdout=io.StringIO())
    return tmp_path / "pki"


KK_TERMS = "Жауапкер талапкерге 2026 жылғы 1 желтоқсанға дейін 500 000 теңге төлейді. ә ғ қ ң ө ұ ү һ і"
RU_TERMS = "Ответчик выплачивает истцу 500 000 тенге до 1 декабря 2026 года."


def complete_fields(layout: str) -> dict[str, str]:
    """Every section of a layout filled in (defaults plus the rest)."""
    values = drafts.draft_defaults(layout=layout)
    for key in drafts.section_keys(layout):
        language, name = key.split(".")
        if not values[key]:
            values[key] = {
                "subject": {"kk": "Қарыз туралы дау", "ru": "Спор о долге", "en": "A dispute over a debt"},
                "terms": {"kk": KK_TERMS, "ru": RU_TERMS, "en": "The respondent pays 500,000 tenge by 1 December 2026."},
                "performance": {"kk": "Банк аударымымен, бір төлеммен.", "ru": "Банковским переводом, одним платежом.",
                                "en": "By bank transfer, in one payment."},
            }[name][language]
    return values


@pytest.fixture
def draft_factory(active_case, mediator, origin):
    def make(layout="kk-ru", case=None, user=None, **overrides):
        fields = {**complete_fields(layout), **overrides}
        return drafts.draft_save(case=case or active_case, user=user or mediator, fields=fields, layout=layout,
                                 origin=origin)

    return make


@pytest.fixture
def frozen(dev_pki, active_case, mediator, draft_factory, origin):
    """An agreement frozen for signing (Kazakh–Russian layout)."""
    draft = draft_factory()
    return signing.agreement_freeze(case=active_case, user=mediator, draft=draft, origin=origin)


def emailed_code(user) -> str:
    """The last signing code emailed to `user` (the job queue must have run)."""
    for message in reversed(mail.outbox):
        if user.email in message.to:
            found = re.search(r"^\s+(\d{6})\s*$", message.body, re.M)
            if found:
                return found.group(1)
    raise AssertionError(f"no signing code was emailed to {user.email}")


def totp_code(user) -> str:
    """The user's current authenticator code, never one about to expire (a
    code read in the last seconds of its period may be checked in the next)."""
    import time

    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )
    from allauth.mfa.utils import decrypt

    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    secret = decrypt(authenticator.data["secret"])
    if time.time() % 30 > 27:
        time.sleep(30 - time.time() % 30 + 0.1)
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


@pytest.fixture
def sealed_agreement(frozen, party_a, party_b, mediator, run_jobs, outbox, origin):
    """The frozen agreement signed by all three (emailed codes, TOTP) and sealed."""
    for user in (party_a, party_b):
        signing.signing_code_send(agreement=frozen, user=user, origin=origin)
        run_jobs()
        signing.agreement_sign(agreement=frozen, user=user, document_sha256=frozen.frozen_sha256, consent=True,
                               code=emailed_code(user), origin=origin)
    signing.agreement_sign(agreement=frozen, user=mediator, document_sha256=frozen.frozen_sha256, consent=True,
                           code=totp_code(mediator), origin=origin)
    run_jobs()
    frozen.refresh_from_db()
    assert frozen.status == "sealed"
    return frozen


@pytest.fixture
def filed(active_case, court, sealed_agreement, party_a, run_jobs, origin):
    """A sealed agreement filed with the court (built-in portal) and delivered."""
    from agreements.services import filing as filing_services
    from sessions.models import Case

    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number="2-500/2026")
    sealed_agreement.refresh_from_db()
    filing = filing_services.filing_submit(agreement=sealed_agreement, user=party_a, origin=origin)
    run_jobs()
    filing.refresh_from_db()
    return filing
