"""Signing rounds beyond the happy path (tests/agreements/test_signing_flow.py):
declining and withdrawing void a round and reopen the draft; a signature is
given only to the version the signer was shown; one-time codes are bound to
one signer and one agreement, expire, die after five wrong tries and work
once; what a signature records; and sealing that survives a worker killed
in the middle of it (real `manage.py db_worker` processes)."""

import datetime
import hashlib
import html
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pypdf
import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from agreements.models import (
    Agreement,
    AgreementStatus,
    Draft,
    DraftComment,
    SignatureMethod,
    Signer,
    SignerStatus,
    SigningCode,
)
from agreements.services import documents, drafts, issuing, signing
from odr.audit import Origin
from odr.models import AuditAction, AuditEvent, User
from sessions.models import CaseStatus
from sessions.services import intake, mediators
from sessions.services.errors import ProcedureError
from tests.agreements.conftest import emailed_code, totp_code
from tests.case_fixtures import accept_all_invitations, accept_atm, accept_undertaking
from tests.conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
STALE = "The document changed after it was shown to you, or is no longer being signed."


@pytest.fixture(autouse=True)
def _english():
    """The services' messages in English (the source strings), whatever the
    default language and its catalogue say."""
    with translation.override("en"):
        yield


# --- Helpers ------------------------------------------------------------------------------------------------


def code_for(agreement, user, run_jobs, origin=ORIGIN) -> str:
    """Ask for a signing code and read it from the email, as the signer would."""
    signing.signing_code_send(agreement=agreement, user=user, origin=origin)
    run_jobs()
    return emailed_code(user)


def sign_by_code(agreement, user, run_jobs, origin=ORIGIN) -> Signer:
    return signing.agreement_sign(
        agreement=agreement, user=user, document_sha256=agreement.frozen_sha256, consent=True,
        code=code_for(agreement, user, run_jobs, origin), origin=origin,
    )


def sign_by_totp(agreement, user, origin=ORIGIN) -> Signer:
    return signing.agreement_sign(
        agreement=agreement, user=user, document_sha256=agreement.frozen_sha256, consent=True,
        code=totp_code(user), origin=origin,
    )


def sign_all(agreement, party_a, party_b, mediator, run_jobs) -> None:
    """Both parties by emailed code, the mediator (last) by TOTP: the round
    moves to SEALING and the sealing job is queued, not yet run."""
    sign_by_code(agreement, party_a, run_jobs)
    sign_by_code(agreement, party_b, run_jobs)
    sign_by_totp(agreement, mediator)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def refused(call, **kwargs) -> ProcedureError:
    with pytest.raises(ProcedureError) as error:
        call(**kwargs)
    return error.value


def statuses(agreement) -> dict[str, str]:
    return {s.role: s.status for s in agreement.signers.all()}


def events(action, agreement=None) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(action=action)
    if agreement is not None:
        found = found.filter(details__agreement=str(agreement.public_id))
    return list(found)


def subject(template: str, user, **context) -> str:
    with translation.override(user.preferred_language):
        return " ".join(render_to_string(f"{template}_subject.txt", context).split())


def reauthenticated(user) -> Client:
    client = Client()
    client.force_login(user)
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def page_text(response) -> str:
    return html.unescape(response.content.decode())


# --- Declining and withdrawing ------------------------------------------------------------------------------


def test_when_a_signatory_declines_then_the_round_is_void_and_a_revised_version_is_signed_and_sealed(
    frozen, active_case, party_a, party_b, mediator, draft_factory, run_jobs, outbox
):
    first = frozen
    sign_by_code(first, party_a, run_jobs)

    # Without a reason: refused, and signing goes on.
    error = refused(signing.agreement_decline, agreement=first, user=party_b, reason="  \n ", origin=ORIGIN)
    assert error.code == "no_reason"
    assert error.message == "Give a reason, so that the mediator can revise the draft."
    first.refresh_from_db()
    assert first.status == AgreementStatus.SIGNING
    assert statuses(first)["claimant"] == SignerStatus.SIGNED

    outbox.clear()
    reason = "Сумма указана неверно: 450 000 тенге."
    signing.agreement_decline(agreement=first, user=party_b, reason=reason, origin=ORIGIN)

    first.refresh_from_db()
    assert first.status == AgreementStatus.DECLINED
    assert first.ended_by == party_b and first.ended_at is not None
    assert signing.agreement_end_reason(first) == reason
    by_role = {s.role: s for s in first.signers.all()}
    assert by_role["claimant"].status == SignerStatus.VOID and by_role["claimant"].voided_at is not None
    assert by_role["respondent"].status == SignerStatus.DECLINED
    assert by_role["mediator"].status == SignerStatus.PENDING
    assert not SigningCode.objects.filter(agreement=first, used_at__isnull=True).exists()
    assert len(events(AuditAction.AGREEMENT_DECLINED, first)) == 1

    run_jobs()
    declined = {
        message.to[0] for message in outbox
        if message.subject == subject("agreements/email/declined", User.objects.get(email=message.to[0]), case=active_case)
    }
    assert declined == {party_a.email, mediator.email}

    # A declined round can be neither signed nor declined any more.
    assert refused(signing.agreement_sign, agreement=first, user=mediator, document_sha256=first.frozen_sha256,
                   consent=True, code=totp_code(mediator), origin=ORIGIN).code == "stale_document"
    assert refused(signing.agreement_decline, agreement=first, user=mediator, reason="No.",
                   origin=ORIGIN).code == "not_signing"

    # The draft is open again: revise, freeze, everyone signs, sealed.
    new_terms = {"ru.terms": "Ответчик выплачивает истцу 450 000 тенге до 1 декабря 2026 года.",
                 "kk.terms": "Жауапкер талапкерге 2026 жылғы 1 желтоқсанға дейін 450 000 теңге төлейді."}
    revised = draft_factory(**new_terms)
    assert revised.version == 2
    second = signing.agreement_freeze(case=active_case, user=mediator, draft=revised, origin=ORIGIN)
    sign_all(second, party_a, party_b, mediator, run_jobs)
    run_jobs()

    second.refresh_from_db()
    first.refresh_from_db()
    assert second.status == AgreementStatus.SEALED
    assert first.status == AgreementStatus.DECLINED
    sealed = issuing.sealed_pdf(second)
    frozen_second, frozen_first = documents.frozen_pdf(second), documents.frozen_pdf(first)
    assert hashlib.sha256(sealed[:len(frozen_second)]).hexdigest() == second.frozen_sha256
    assert second.frozen_sha256 != first.frozen_sha256
    assert not sealed.startswith(frozen_first)
    text = " ".join(" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(sealed)).pages)
    assert "450 000 тенге" in text and "500 000 тенге" not in text


def test_when_the_mediator_withdraws_a_round_then_it_is_withdrawn_and_its_signatures_are_void(
    frozen, active_case, party_a, party_b, mediator, draft_factory, run_jobs, outbox
):
    sign_by_code(frozen, party_a, run_jobs)
    with pytest.raises(PermissionDenied):
        signing.agreement_withdraw(agreement=frozen, user=party_b, reason="I want it back.", origin=ORIGIN)
    assert refused(signing.agreement_withdraw, agreement=frozen, user=mediator, reason="",
                   origin=ORIGIN).code == "no_reason"

    outbox.clear()
    signing.agreement_withdraw(agreement=frozen, user=mediator, reason="A typo in the amount.", origin=ORIGIN)

    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.WITHDRAWN
    assert frozen.ended_by == mediator
    claimant = frozen.signers.get(role="claimant")
    assert claimant.status == SignerStatus.VOID and claimant.voided_at is not None
    assert statuses(frozen) == {"claimant": SignerStatus.VOID, "respondent": SignerStatus.PENDING,
                                "mediator": SignerStatus.PENDING}
    assert len(events(AuditAction.AGREEMENT_WITHDRAWN, frozen)) == 1
    run_jobs()
    withdrawn = {m.to[0] for m in outbox
                 if m.subject == subject("agreements/email/withdrawn", User.objects.get(email=m.to[0]), case=active_case)}
    assert withdrawn == {party_a.email, party_b.email}
    assert draft_factory(**{"ru.terms": "Исправленная сумма."}).version == 2


# --- The version signed is the version shown ----------------------------------------------------------------


def _substitute(agreement, case, mediator, draft_factory) -> Agreement:
    """The mediator takes the round back and freezes a changed version."""
    signing.agreement_withdraw(agreement=agreement, user=mediator, reason="Corrected.", origin=ORIGIN)
    revised = draft_factory(**{"ru.terms": "Ответчик выплачивает истцу 5 000 тенге."})
    return signing.agreement_freeze(case=case, user=mediator, draft=revised, origin=ORIGIN)


def test_when_the_version_changed_after_it_was_shown_then_signing_is_refused_and_nothing_is_signed(
    frozen, active_case, party_a, mediator, draft_factory, run_jobs
):
    shown = frozen.frozen_sha256  # what party A read, with a code for it
    code_a = code_for(frozen, party_a, run_jobs)
    replacement = _substitute(frozen, active_case, mediator, draft_factory)
    assert replacement.frozen_sha256 != shown
    code_b = code_for(replacement, party_a, run_jobs)

    attempts = [
        (frozen, shown, code_a),  # the old round, with what was shown
        (replacement, shown, code_b),  # the new round, with the old fingerprint
        (replacement, hashlib.sha256(b"made up").hexdigest(), code_b),
        (replacement, "", code_b),
    ]
    for agreement, sha256, code in attempts:
        error = refused(signing.agreement_sign, agreement=agreement, user=party_a, document_sha256=sha256,
                        consent=True, code=code, origin=ORIGIN)
        assert error.code == "stale_document"
        assert error.message.startswith(STALE)

    assert not Signer.objects.filter(status=SignerStatus.SIGNED).exists()
    assert not events(AuditAction.AGREEMENT_SIGNED)
    unspent = SigningCode.objects.get(agreement=replacement, user=party_a)
    assert unspent.used_at is None and unspent.attempts == 0
    # The new version, with its own fingerprint, is signed with the same code.
    signed = signing.agreement_sign(agreement=replacement, user=party_a, document_sha256=replacement.frozen_sha256,
                                    consent=True, code=code_b, origin=ORIGIN)
    assert signed.status == SignerStatus.SIGNED and signed.document_sha256 == replacement.frozen_sha256


def test_when_the_old_signing_form_is_posted_after_the_round_changed_then_the_page_says_so_and_nothing_is_signed(
    frozen, active_case, party_a, mediator, draft_factory, run_jobs
):
    client = reauthenticated(party_a)
    old_url = reverse("agreements:sign", args=[active_case.public_id, frozen.public_id])
    page = client.get(old_url)
    assert page.status_code == 200
    hidden = re.findall(r'name="document_sha256" value="([0-9a-f]{64})"', page.content.decode())
    assert hidden and set(hidden) == {frozen.frozen_sha256}
    assert client.post(old_url, {"action": "send_code"}).status_code == 302
    run_jobs()
    code = emailed_code(party_a)

    replacement = _substitute(frozen, active_case, mediator, draft_factory)
    old_form = {"action": "sign", "document_sha256": hidden[0], "consent": "yes", "code": code}
    with translation.override(party_a.preferred_language):
        expected = gettext(
            "The document changed after it was shown to you, or is no longer being signed. "
            "Nothing was signed: read the current version and sign again."
        )

    response = client.post(old_url, old_form, follow=True)
    assert response.status_code == 200
    assert expected in page_text(response)

    new_url = reverse("agreements:sign", args=[active_case.public_id, replacement.public_id])
    assert client.post(new_url, {"action": "send_code"}).status_code == 302
    run_jobs()
    response = client.post(new_url, {**old_form, "code": emailed_code(party_a)}, follow=True)
    assert expected in page_text(response)

    assert not Signer.objects.filter(status=SignerStatus.SIGNED).exists()
    assert not events(AuditAction.AGREEMENT_SIGNED)


# --- One-time codes -----------------------------------------------------------------------------------------


def test_when_the_code_is_wrong_then_signing_is_refused_the_try_counted_and_audited(frozen, party_a, run_jobs):
    code = code_for(frozen, party_a, run_jobs)

    error = refused(signing.agreement_sign, agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                    consent=True, code=other_code(code), origin=ORIGIN)

    assert error.code == "wrong_code"
    assert error.message == "The code is wrong. Tries left: 4."
    assert SigningCode.objects.get(agreement=frozen, user=party_a).attempts == 1
    (audit,) = events(AuditAction.AGREEMENT_SIGNING_REFUSED, frozen)
    assert audit.actor_id == party_a.pk and audit.details["reason"] == "wrong_code"
    assert audit.ip == ORIGIN.ip
    assert frozen.signers.get(user=party_a).status == SignerStatus.PENDING


def test_when_five_wrong_codes_were_tried_then_the_code_is_void_even_when_right(frozen, party_a, run_jobs):
    code = code_for(frozen, party_a, run_jobs)
    wrong = other_code(code)
    for left in (4, 3, 2, 1):
        assert refused(signing.agreement_sign, agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                       consent=True, code=wrong, origin=ORIGIN).message == f"The code is wrong. Tries left: {left}."
    last = refused(signing.agreement_sign, agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                   consent=True, code=wrong, origin=ORIGIN)
    assert last.message == "The code is wrong, and it is now void. Ask for a new one."

    error = refused(signing.agreement_sign, agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                    consent=True, code=code, origin=ORIGIN)

    assert error.code == "expired_code"
    assert SigningCode.objects.get(agreement=frozen, user=party_a).attempts == 5
    assert len(events(AuditAction.AGREEMENT_SIGNING_REFUSED, frozen)) == 5
    assert frozen.signers.get(user=party_a).status == SignerStatus.PENDING


def test_when_the_code_has_expired_then_signing_is_refused_with_a_message(frozen, party_a, run_jobs):
    code = code_for(frozen, party_a, run_jobs)
    SigningCode.objects.filter(agreement=frozen, user=party_a).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    error = refused(signing.agreement_sign, agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                    consent=True, code=code, origin=ORIGIN)

    assert error.code == "expired_code"
    assert error.message == "This code has expired. Ask for a new one."
    assert frozen.signers.get(user=party_a).status == SignerStatus.PENDING


def test_when_a_code_was_used_then_it_does_not_work_again(frozen, party_a, run_jobs):
    code = code_for(frozen, party_a, run_jobs)
    signer = signing.agreement_sign(agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                                    consent=True, code=code, origin=ORIGIN)
    assert signer.status == SignerStatus.SIGNED
    assert SigningCode.objects.get(agreement=frozen, user=party_a).used_at is not None
    # The policy refuses a second signature by a signer who signed; to see
    # that the code itself is spent, put the signer back behind the service.
    Signer.objects.filter(pk=signer.pk).update(status=SignerStatus.PENDING)

    error = refused(signing.agreement_sign, agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                    consent=True, code=code, origin=ORIGIN)

    assert error.code == "no_code"
    assert len(events(AuditAction.AGREEMENT_SIGNED, frozen)) == 1


def test_when_a_code_is_asked_for_again_within_a_minute_then_it_is_refused(frozen, party_a, run_jobs, outbox):
    first = code_for(frozen, party_a, run_jobs)
    sent = len(outbox)

    error = refused(signing.signing_code_send, agreement=frozen, user=party_a, origin=ORIGIN)
    run_jobs()

    assert error.code == "too_soon"
    assert len(outbox) == sent
    assert SigningCode.objects.filter(agreement=frozen, user=party_a).count() == 1
    # The first code still works.
    assert signing.agreement_sign(agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                                  consent=True, code=first, origin=ORIGIN).status == SignerStatus.SIGNED


@pytest.fixture
def other_round(active_case, party_a, party_b, mediator, application_factory, draft_factory):
    """A second case of the same three people, with its own round being signed."""
    case = intake.case_file(claimant=party_a, application=application_factory(party_b, mediator=mediator),
                            origin=ORIGIN)
    accept_all_invitations(case, party_b, origin=ORIGIN)
    mediators.mediator_answer(case=case, user=mediator, accept=True, reason="", origin=ORIGIN)
    for user in (party_a, party_b, mediator):
        accept_atm(case, user, ORIGIN)
    for user in (party_a, party_b, mediator):
        accept_undertaking(case, user, ORIGIN)
    case.refresh_from_db()
    assert case.status == CaseStatus.ACTIVE
    return signing.agreement_freeze(case=case, user=mediator, draft=draft_factory(case=case), origin=ORIGIN)


def test_when_a_code_of_another_agreement_is_used_then_signing_is_refused(frozen, other_round, party_a, run_jobs):
    code_x = code_for(frozen, party_a, run_jobs)
    code_y = code_for(other_round, party_a, run_jobs)
    assert code_x != code_y

    error = refused(signing.agreement_sign, agreement=other_round, user=party_a,
                    document_sha256=other_round.frozen_sha256, consent=True, code=code_x, origin=ORIGIN)

    assert error.code == "wrong_code"
    assert other_round.signers.get(user=party_a).status == SignerStatus.PENDING
    # Each code signs its own agreement.
    signing.agreement_sign(agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256, consent=True,
                           code=code_x, origin=ORIGIN)
    assert frozen.signers.get(user=party_a).status == SignerStatus.SIGNED


def test_when_another_users_code_is_used_then_signing_is_refused(frozen, party_a, party_b, run_jobs):
    code_a = code_for(frozen, party_a, run_jobs)
    code_b = code_for(frozen, party_b, run_jobs)
    assert code_a != code_b

    error = refused(signing.agreement_sign, agreement=frozen, user=party_b, document_sha256=frozen.frozen_sha256,
                    consent=True, code=code_a, origin=ORIGIN)

    assert error.code == "wrong_code"
    assert statuses(frozen) == {"claimant": SignerStatus.PENDING, "respondent": SignerStatus.PENDING,
                                "mediator": SignerStatus.PENDING}
    # A's code is still A's, untouched by B's try.
    assert SigningCode.objects.get(agreement=frozen, user=party_a).attempts == 0


def test_when_the_totp_code_is_wrong_then_signing_is_refused(frozen, mediator):
    assert signing.signing_method_for(mediator) == SignatureMethod.TOTP

    error = refused(signing.agreement_sign, agreement=frozen, user=mediator, document_sha256=frozen.frozen_sha256,
                    consent=True, code=other_code(totp_code(mediator)), origin=ORIGIN)

    assert error.code == "wrong_code"
    assert error.message == "The code from your authenticator app is wrong or was already used."
    (audit,) = events(AuditAction.AGREEMENT_SIGNING_REFUSED, frozen)
    assert audit.details["reason"] == "wrong_totp"
    assert frozen.signers.get(user=mediator).status == SignerStatus.PENDING


def test_when_consent_is_not_given_then_signing_is_refused_and_the_code_is_not_spent(frozen, party_a, run_jobs):
    code = code_for(frozen, party_a, run_jobs)

    error = refused(signing.agreement_sign, agreement=frozen, user=party_a, document_sha256=frozen.frozen_sha256,
                    consent=False, code=code, origin=ORIGIN)

    assert error.code == "no_consent"
    stored = SigningCode.objects.get(agreement=frozen, user=party_a)
    assert stored.used_at is None and stored.attempts == 0
    assert frozen.signers.get(user=party_a).status == SignerStatus.PENDING


# --- Drafting around a round --------------------------------------------------------------------------------


def test_when_a_round_is_being_signed_then_the_draft_cannot_be_saved(frozen, draft_factory):
    error = refused(draft_factory, **{"ru.terms": "Другие условия."})

    assert error.code == "frozen"
    assert frozen.case.drafts.count() == 1


def test_when_a_version_is_not_the_latest_then_it_cannot_be_frozen(dev_pki, active_case, mediator, draft_factory):
    older = draft_factory()
    draft_factory(**{"ru.terms": "Ответчик выплачивает истцу 1 тенге."})

    error = refused(signing.agreement_freeze, case=active_case, user=mediator, draft=older, origin=ORIGIN)

    assert error.code == "stale_draft"
    assert not Agreement.objects.filter(case=active_case).exists()


def test_when_a_required_section_is_empty_then_freezing_is_refused_naming_it(
    dev_pki, active_case, mediator, draft_factory
):
    draft = draft_factory(**{"kk.performance": ""})

    with translation.override("en"):
        error = refused(signing.agreement_freeze, case=active_case, user=mediator, draft=draft, origin=ORIGIN)

    assert error.code == "incomplete"
    assert "Deadlines and manner of performance (Kazakh)" in error.message
    assert "(Russian)" not in error.message  # only what is missing is named
    assert not Agreement.objects.filter(case=active_case).exists()


def test_when_comments_and_a_proposal_are_written_then_their_words_are_not_in_the_database_rows(
    active_case, party_a, party_b, draft_factory
):
    draft = draft_factory()
    words = {
        "first": "Первый комментарий: CANARY-comment-one қағаз",
        "second": "Екінші пікір: CANARY-comment-two ұсыныс",
        "proposal": "Ответчик платит CANARY-proposal-three тенге",
        "why": "Прошу изменить сумму CANARY-proposal-why",
    }
    drafts.draft_comment(draft=draft, user=party_a, text=words["first"], origin=ORIGIN)
    drafts.draft_comment(draft=draft, user=party_b, text=words["second"], origin=ORIGIN)
    drafts.draft_comment(draft=draft, user=party_a, text=words["why"], section="ru.terms",
                         proposal=words["proposal"], origin=ORIGIN)

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT text_sealed, proposal_sealed FROM {DraftComment._meta.db_table} WHERE draft_id = %s",
            [draft.pk],
        )
        rows = cursor.fetchall()
    assert len(rows) == 3
    raw = b"".join(bytes(column) for row in rows for column in row if column is not None)
    assert raw
    for text in words.values():
        for needle in (text, *(word for word in text.split() if len(word) >= 5)):
            assert needle.encode() not in raw, needle
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT text_sealed FROM {Draft._meta.db_table} WHERE id = %s", [draft.pk])
        (draft_raw,) = cursor.fetchone()
    for needle in ("Жауапкер талапкерге", "Ответчик выплачивает", "Спор о долге", "Қарыз туралы дау"):
        assert needle.encode() not in bytes(draft_raw), needle
    # The product reads them back.
    read = [drafts.comment_texts(c) for c in draft.comments.all()]
    assert read == [(words["first"], ""), (words["second"], ""), (words["why"], words["proposal"])]


# --- What a signature records -------------------------------------------------------------------------------


def test_when_someone_signs_then_the_signature_records_who_as_what_when_from_where_how_and_on_what(
    frozen, party_a, mediator, run_jobs
):
    where = Origin(ip="198.51.100.23", user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    before = timezone.now()

    by_code = sign_by_code(frozen, party_a, run_jobs, origin=where)
    by_totp = sign_by_totp(frozen, mediator, origin=where)

    after = timezone.now()
    for signer, user, role, method in ((by_code, party_a, "claimant", SignatureMethod.EMAIL_CODE),
                                       (by_totp, mediator, "mediator", SignatureMethod.TOTP)):
        signer = Signer.objects.get(pk=signer.pk)
        assert signer.user == user and signer.role == role
        assert signer.status == SignerStatus.SIGNED
        assert before <= signer.signed_at <= after
        assert signer.ip == "198.51.100.23"
        assert signer.user_agent == where.user_agent
        assert signer.method == method
        assert signer.document_sha256 == frozen.frozen_sha256 == hashlib.sha256(documents.frozen_pdf(frozen)).hexdigest()
        assert signer.consent_sha256 == signing.consent_digest(signing.consent_statement())
        assert re.fullmatch(r"[0-9a-f]{64}", signer.consent_sha256)
        assert not signer.certificate_sha256
    audits = events(AuditAction.AGREEMENT_SIGNED, frozen)
    assert [(a.actor_id, a.ip, a.details["method"], a.details["sha256"]) for a in audits] == [
        (party_a.pk, "198.51.100.23", SignatureMethod.EMAIL_CODE, frozen.frozen_sha256),
        (mediator.pk, "198.51.100.23", SignatureMethod.TOTP, frozen.frozen_sha256),
    ]


# --- Sealing ------------------------------------------------------------------------------------------------


def test_when_sealing_runs_twice_then_the_second_does_nothing(frozen, party_a, party_b, mediator, run_jobs):
    sign_all(frozen, party_a, party_b, mediator, run_jobs)
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALING

    assert issuing.agreement_seal(agreement_id=frozen.pk) is True
    sealed = Agreement.objects.get(pk=frozen.pk)
    assert issuing.agreement_seal(agreement_id=frozen.pk) is False
    run_jobs()  # the job queued when the last signature came: finds it sealed

    again = Agreement.objects.get(pk=frozen.pk)
    assert again.status == AgreementStatus.SEALED
    assert (again.sealed_sha256, again.sealed_at, again.seal_attempts, bytes(again.sealed_pdf_sealed)) == (
        sealed.sealed_sha256, sealed.sealed_at, sealed.seal_attempts, bytes(sealed.sealed_pdf_sealed))
    assert again.seal_attempts == 1
    assert len(events(AuditAction.AGREEMENT_SEALED, frozen)) == 1


def test_when_an_agreement_is_sealed_then_it_can_no_longer_be_signed_or_declined(
    frozen, party_a, party_b, mediator, run_jobs
):
    sign_all(frozen, party_a, party_b, mediator, run_jobs)
    run_jobs()
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALED

    for user in (party_a, party_b, mediator):
        assert refused(signing.agreement_sign, agreement=frozen, user=user, document_sha256=frozen.frozen_sha256,
                       consent=True, code="123456", origin=ORIGIN).code == "stale_document"
        assert refused(signing.agreement_decline, agreement=frozen, user=user, reason="Changed my mind.",
                       origin=ORIGIN).code == "not_signing"
    with pytest.raises(ProcedureError):
        signing.agreement_withdraw(agreement=frozen, user=mediator, reason="Changed my mind.", origin=ORIGIN)
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALED
    assert set(statuses(frozen).values()) == {SignerStatus.SIGNED}


# --- A worker killed in the middle of sealing ----------------------------------------------------------------


def _database_url() -> str:
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    assert connection.vendor == "postgresql", connection.vendor
    credentials = quote(params.get("USER") or "", safe="")
    if params.get("PASSWORD"):
        credentials += ":" + quote(params["PASSWORD"], safe="")
    host = params.get("HOST") or "localhost"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{params['NAME']}"


def _worker(settings, *, backend: str) -> subprocess.CompletedProcess:
    """A real `manage.py db_worker` process on the test database, with the
    test's keys and PKI, that runs what is due and stops."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "ODR_MASTER_KEY": settings.ODR_MASTER_KEY,
        "ODR_PKI_DIR": str(settings.ODR_PKI_DIR),
        "ODR_SEAL_PKCS12": settings.ODR_SEAL_PKCS12,
        "ODR_SEAL_PASSPHRASE": settings.ODR_SEAL_PASSPHRASE,
        "ODR_TRUST_ROOTS": ",".join(settings.ODR_TRUST_ROOTS),
        "ODR_SEAL_BACKEND": backend,
        "ODR_SEAL_RETRY_SECONDS": "1",
        "EMAIL_URL": "consolemail://",
        "PYTHONPATH": str(BASE_DIR),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--interval", "0"],
        check=False, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )


def _delayed_seal_jobs():
    """Sealing jobs waiting on the queue for a time (a follow-up attempt)."""
    return DBTaskResult.objects.filter(
        task_path="agreements.tasks.seal_agreement", status=TaskResultStatus.READY
    ).exclude(run_after=get_date_max())


def _wait_until_due() -> None:
    """Sleep until every delayed sealing job is due."""
    latest = max((job.run_after for job in _delayed_seal_jobs()), default=None)
    if latest is not None:
        time.sleep(max(0.0, (latest - timezone.now()).total_seconds()) + 0.2)


@pytest.mark.django_db(transaction=True)
def test_when_the_worker_dies_while_sealing_then_a_later_worker_seals_exactly_once(
    settings, frozen, active_case, party_a, party_b, mediator, run_jobs
):
    sign_all(frozen, party_a, party_b, mediator, run_jobs)
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALING

    crashed = _worker(settings, backend="tests.agreements.crashing_sealer.CrashingSealer")

    assert crashed.returncode == 9, crashed.stdout[-2000:] + crashed.stderr[-2000:]
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALING
    assert frozen.sealed_pdf_sealed is None and frozen.sealed_sha256 is None
    assert frozen.seal_attempts == 1
    assert not events(AuditAction.AGREEMENT_SEALED)
    # The attempt queued its own follow-up before it died.
    assert _delayed_seal_jobs().count() == 1

    _wait_until_due()
    recovered = _worker(settings, backend="agreements.sealing.Pkcs12Sealer")

    assert recovered.returncode == 0, recovered.stdout[-2000:] + recovered.stderr[-2000:]
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALED
    assert frozen.seal_attempts == 2
    assert len(events(AuditAction.AGREEMENT_SEALED)) == 1
    active_case.refresh_from_db()
    assert active_case.status == CaseStatus.SETTLED
    sealed = issuing.sealed_pdf(frozen)
    assert hashlib.sha256(sealed).hexdigest() == frozen.sealed_sha256
    assert sealed.startswith(documents.frozen_pdf(frozen))

    # The follow-up the successful attempt queued (the worker may have run it
    # already, if it fell due meanwhile) finds the agreement sealed.
    if _delayed_seal_jobs().exists():
        _wait_until_due()
        assert _worker(settings, backend="agreements.sealing.Pkcs12Sealer").returncode == 0
    jobs = DBTaskResult.objects.filter(task_path="agreements.tasks.seal_agreement")
    assert sorted((job.status, job.return_value) for job in jobs) == [
        (TaskResultStatus.RUNNING, None),  # the attempt that died with its worker
        (TaskResultStatus.SUCCESSFUL, False),  # the last follow-up: nothing to do
        (TaskResultStatus.SUCCESSFUL, True),  # the one that sealed
    ]
    again = Agreement.objects.get(pk=frozen.pk)
    assert (again.sealed_sha256, again.sealed_at, again.seal_attempts) == (
        frozen.sealed_sha256, frozen.sealed_at, 2)
    assert len(events(AuditAction.AGREEMENT_SEALED)) == 1
