"""The demo case's draft agreement (make run): complete, ready to freeze."""

import io

from django.core.management import call_command

from agreements.services import drafts, signing
from odr.audit import SYSTEM
from odr.models import User
from sessions.models import Case


def test_when_demo_agreement_is_seeded_twice_then_one_complete_draft_can_be_frozen(db, settings, dev_pki):
    settings.ODR_DEMO_MODE = True
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo_agreement", stdout=io.StringIO())
    call_command("seed_demo_agreement", stdout=io.StringIO())

    case = Case.objects.get()
    (draft,) = case.drafts.all()
    assert draft.layout == "kk-ru"
    assert drafts.draft_missing_sections(draft) == []
    mediator = User.objects.get(email="mediator@demo.kz")
    agreement = signing.agreement_freeze(case=case, user=mediator, draft=draft, origin=SYSTEM)
    assert agreement.signers.count() == 3


def test_when_make_dev_ca_runs_then_a_demo_signer_certificate_opens_with_its_documented_password(dev_pki):
    from agreements import certificates, pki

    personal = certificates.certificate_open((dev_pki / pki.DEMO_SIGNER_FILE).read_bytes(), pki.DEMO_SIGNER_PASSWORD)
    assert "Dana Omarova" in personal.subject
