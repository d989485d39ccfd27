"""The whole flow: freeze, three signers (two parties by emailed code, the
mediator by TOTP), sealing on the job queue, verification."""

import pytest
from django.utils import translation

from agreements.models import AgreementStatus, SignatureMethod, SignerStatus
from agreements.selectors import verify_file
from agreements.services import documents, issuing, signing
from agreements.verification import verify_pdf
from sessions.models import CaseStatus
from tests.agreements.conftest import emailed_code, totp_code

pytestmark = pytest.mark.django_db(transaction=False)


def sign_with_email_code(agreement, user, run_jobs, origin):
    signing.signing_code_send(agreement=agreement, user=user, origin=origin)
    run_jobs()
    return signing.agreement_sign(
        agreement=agreement, user=user, document_sha256=agreement.frozen_sha256, consent=True,
        code=emailed_code(user), origin=origin,
    )


def test_when_two_parties_and_the_mediator_sign_then_the_agreement_is_sealed_and_verifies(
    frozen, party_a, party_b, mediator, run_jobs, outbox, origin
):
    first = sign_with_email_code(frozen, party_a, run_jobs, origin)
    second = sign_with_email_code(frozen, party_b, run_jobs, origin)
    third = signing.agreement_sign(
        agreement=frozen, user=mediator, document_sha256=frozen.frozen_sha256, consent=True,
        code=totp_code(mediator), origin=origin,
    )
    assert [first.method, second.method, third.method] == [
        SignatureMethod.EMAIL_CODE, SignatureMethod.EMAIL_CODE, SignatureMethod.TOTP]
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALING

    run_jobs()

    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALED
    assert frozen.case.status == CaseStatus.SETTLED
    assert set(frozen.signers.values_list("status", flat=True)) == {SignerStatus.SIGNED}
    pdf = issuing.sealed_pdf(frozen)
    assert pdf.startswith(documents.frozen_pdf(frozen))
    report = verify_pdf(pdf)
    assert report.valid, report.reasons
    assert [s.field for s in report.signatures] == ["Signature1", "Signature2", "Signature3", "PlatformSeal"]
    assert verify_file(pdf).valid


def test_when_the_mediation_is_withdrawn_during_signing_then_the_round_is_withdrawn_and_signatures_void(
    frozen, party_a, party_b, run_jobs, outbox, origin
):
    from sessions.services import procedure

    sign_with_email_code(frozen, party_a, run_jobs, origin)

    with translation.override("en"):
        procedure.case_withdraw(case=frozen.case, user=party_b, reason="I changed my mind.", origin=origin)

    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.WITHDRAWN
    assert frozen.signers.get(user=party_a).status == SignerStatus.VOID
    assert "ended before everyone signed" in signing.agreement_end_reason(frozen)
