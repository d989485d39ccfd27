"""The sealed agreement as a document: its Kazakh and Russian words, the case
reference and page numbers on every page, embedded fonts, the signature page
with its verification code and QR code; judged valid by pyHanko's own
validator; any changed or appended byte, or a validly sealed file that is not
in the register, is not valid; and it outlives the case's retention purge."""

import datetime
import io
import re
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest
import segno
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation
from pyhanko.pdf_utils.reader import PdfFileReader
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject, IndirectObject
from weasyprint import HTML

from agreements import rendering, sealing
from agreements.models import Agreement, AgreementStatus, Draft, DraftComment
from agreements.selectors import verify_code, verify_file
from agreements.services import documents, drafts, issuing, signing
from agreements.verification import verify_pdf
from odr.crypto import ContentDestroyed
from sessions.models import CaseStatus
from sessions.services import retention
from tests.agreements.conftest import KK_TERMS, RU_TERMS, emailed_code, totp_code
from tests.conftest import ORIGIN

pytestmark = pytest.mark.django_db

NOT_IN_REGISTER = "not in the register"


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def sealed_agreement(frozen, party_a, party_b, mediator, run_jobs) -> Agreement:
    """The Kazakh–Russian agreement signed by both parties (emailed codes)
    and the mediator (TOTP), and sealed by the job queue."""
    for user in (party_a, party_b):
        signing.signing_code_send(agreement=frozen, user=user, origin=ORIGIN)
        run_jobs()
        signing.agreement_sign(agreement=frozen, user=user, document_sha256=frozen.frozen_sha256, consent=True,
                               code=emailed_code(user), origin=ORIGIN)
    signing.agreement_sign(agreement=frozen, user=mediator, document_sha256=frozen.frozen_sha256, consent=True,
                           code=totp_code(mediator), origin=ORIGIN)
    run_jobs()
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALED
    return frozen


@pytest.fixture
def sealed(sealed_agreement) -> bytes:
    return issuing.sealed_pdf(sealed_agreement)


def pages_text(pdf: bytes) -> list[str]:
    """Each page's text, whitespace runs (line breaks of the layout) as one space."""
    return [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


# --- The document -------------------------------------------------------------------------------------------


def test_when_sealed_then_the_kazakh_and_russian_words_the_reference_and_page_numbers_are_in_the_pdf(
    sealed_agreement, sealed
):
    pages = pages_text(sealed)
    text = " ".join(pages)

    assert len(pages) >= 2
    for words in (KK_TERMS, RU_TERMS, "Қарыз туралы дау", "Спор о долге",
                  "Медиация тәртібімен дауды реттеу туралы келісім",
                  "Соглашение об урегулировании спора в порядке медиации"):
        assert " ".join(words.split()) in text, words
    for letter in "әғқңөұүһі":
        assert letter in text
    reference = sealed_agreement.case.reference
    assert reference
    for number, page in enumerate(pages, start=1):
        assert reference in page, number
        assert re.search(rf"(?<!\d){number} / {len(pages)}(?!\d)", page), (number, page[-80:])


def _fonts(pdf: bytes) -> list[DictionaryObject]:
    """Every font dictionary reachable from the document catalogue: the
    pages' and the signature boxes' appearance streams alike."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    seen, fonts, stack = set(), [], [reader.trailer["/Root"]]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            item = item.get_object()
        if isinstance(item, DictionaryObject):
            if item.get("/Type") == "/Font":
                fonts.append(item)
            stack.extend(value for key, value in item.items() if key != "/Parent")
        elif isinstance(item, ArrayObject):
            stack.extend(item)
    return fonts


def _embedded(font: DictionaryObject) -> bool:
    if font.get("/Subtype") == "/Type0":
        return all(_embedded(descendant.get_object()) for descendant in font["/DescendantFonts"])
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return False  # one of the standard 14 (or a Type 3 font): not embedded
    descriptor = descriptor.get_object()
    return any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))


def test_when_sealed_then_every_font_is_embedded(sealed):
    fonts = _fonts(sealed)

    names = {str(font.get("/BaseFont")) for font in fonts}
    assert any("ODR-Sans" in name for name in names), names  # the document's
    assert any("DejaVuSans" in name for name in names), names  # the signature stamps'
    not_embedded = [str(font.get("/BaseFont")) for font in fonts if not _embedded(font)]
    assert not not_embedded


def _qr_modules(page) -> set[tuple[int, int]]:
    """The dark modules of the QR code drawn on a page. segno's SVG draws each
    row's runs of dark modules as horizontal strokes ("M x y.5 h n") in
    module units from the quiet zone; WeasyPrint turns each into `m` then
    `l` at the same height."""
    operations = ContentStream(page.get_contents(), page.pdf).operations
    modules, start = set(), None
    for operands, operator in operations:
        if operator == b"m":
            start = tuple(float(v) for v in operands)
        elif operator == b"l" and start is not None:
            (x1, y1), (x2, y2) = start, tuple(float(v) for v in operands)
            if y1 == y2 and (y1 - 0.5).is_integer() and x1.is_integer() and x2.is_integer() and x2 > x1:
                modules.update((int(y1 - 0.5) - 4, column - 4) for column in range(int(x1), int(x2)))
            start = None
        else:
            start = None
    return modules


def test_when_sealed_then_the_signature_page_lists_the_signers_with_the_verification_code_and_its_qr_code(
    sealed_agreement, sealed, party_a, party_b, mediator
):
    reader = pypdf.PdfReader(io.BytesIO(sealed))
    last = reader.pages[-1]
    text = " ".join(last.extract_text().split())

    assert "Тараптар мен медиатордың қолдары / Подписи сторон и медиатора" in text
    for user, role in ((party_a, "Талапкер / Истец"), (party_b, "Жауапкер / Ответчик"),
                       (mediator, "Медиатор / Медиатор")):
        assert f"{user.display_name} — {role}" in text
    code = sealed_agreement.verification_code
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert code in text and "Тексеру коды" in text and "Код проверки" in text
    assert rendering.verify_url() in text
    # The QR code on that page is the verification URL with this code.
    expected = segno.make(rendering.verify_url(code), error="m")
    dark = {(row, column) for row, line in enumerate(expected.matrix) for column, bit in enumerate(line) if bit}
    assert "?code=" + code in rendering.verify_url(code)
    assert _qr_modules(last) == dark
    assert not any(_qr_modules(page) for page in reader.pages[:-1])


def test_when_sealed_then_pyhankos_own_validator_finds_every_signature_intact_and_trusted(
    sealed, dev_pki, tmp_path
):
    path = tmp_path / "agreement.pdf"
    path.write_bytes(sealed)

    result = subprocess.run(
        [str(Path(sys.executable).parent / "pyhanko"), "sign", "validate", "--trust", str(dev_pki / "ca.pem"),
         "--trust-replace", str(path)],
        check=False, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in lines] == ["Signature1", "Signature2", "Signature3", "PlatformSeal"]
    for line in lines:
        assert ":INTACT:TRUSTED" in line, line


# --- Tampering and the register -----------------------------------------------------------------------------

HEX = b"0123456789ABCDEFabcdef"


def changed(data: bytes, position: int) -> bytes:
    """One byte changed; a hex digit stays a hex digit (inside /Contents)."""
    out = bytearray(data)
    if out[position] in HEX:
        out[position] = ord("0") if out[position] != ord("0") else ord("1")
    else:
        out[position] ^= 0x01
    return bytes(out)


def _places(sealed: bytes, frozen_length: int) -> dict[str, int]:
    reader = pypdf.PdfReader(io.BytesIO(sealed))
    contents = reader.pages[0].raw_get("/Contents")
    offset = reader.xref[contents.generation][contents.idnum]
    text_start = sealed.index(b"stream", offset) + len(b"stream") + 1
    text_end = sealed.index(b"endstream", text_start)
    signatures = {s.field_name: s for s in PdfFileReader(io.BytesIO(sealed)).embedded_signatures}
    first_contents = signatures["Signature1"].byte_range[1]
    seal_contents = signatures[sealing.SEAL_FIELD].byte_range[1]
    seal_der = len(bytes(signatures[sealing.SEAL_FIELD].sig_object["/Contents"]).rstrip(b"\0"))
    return {
        "start (the PDF version)": len(b"%PDF-"),
        "middle of the agreement's text": (text_start + text_end) // 2,
        "first signature's revision": (frozen_length + first_contents) // 2,
        "first signature's container": first_contents + 1 + 200,
        "seal's /Contents": seal_contents + 1 + seal_der,
        "last byte": len(sealed) - 1,
    }


def test_when_one_byte_is_changed_anywhere_then_the_sealed_pdf_is_not_valid(sealed_agreement, sealed):
    assert verify_file(sealed).valid
    places = _places(sealed, len(documents.frozen_pdf(sealed_agreement)))

    still_valid = {}
    for place, position in places.items():
        tampered = changed(sealed, position)
        assert tampered != sealed and len(tampered) == len(sealed)
        report, record = verify_pdf(tampered), verify_file(tampered)
        if report.valid or record.valid or not report.reasons:
            still_valid[place] = (position, report.reasons)

    assert not still_valid


def test_when_bytes_are_appended_then_the_sealed_pdf_is_not_valid(sealed):
    for tail in (b"\n", b"%%EOF\n", b"\n% a note added later\n"):
        assert not verify_pdf(sealed + tail).valid, tail
        assert not verify_file(sealed + tail).valid, tail


def test_when_a_pdf_sealed_with_the_platform_key_is_not_in_the_register_then_it_is_not_valid(sealed):
    sealer = sealing.get_sealer()
    arbitrary = sealer.seal(HTML(string="<p>Келісім жоқ / Соглашения нет</p>").write_pdf(), reason="test")
    # The genuine agreement with one more platform signature over it: valid
    # signatures, but not the bytes the register holds.
    resealed = sealer.sign(sealed, field="SecondSeal", reason="a second seal over the genuine agreement")

    for pdf in (arbitrary, resealed):
        assert verify_pdf(pdf).valid, verify_pdf(pdf).reasons  # the seal itself is fine
        result = verify_file(pdf)
        assert not result.valid and result.agreement is None
        assert any(NOT_IN_REGISTER in reason for reason in result.report.reasons), result.report.reasons
    assert verify_file(sealed).valid


def test_when_verify_agreement_runs_then_it_exits_nonzero_unless_the_file_is_a_registered_intact_agreement(
    sealed_agreement, sealed, tmp_path
):
    good, bad, foreign = tmp_path / "good.pdf", tmp_path / "bad.pdf", tmp_path / "foreign.pdf"
    good.write_bytes(sealed)
    bad.write_bytes(changed(sealed, len(sealed) // 2))
    foreign.write_bytes(sealing.get_sealer().sign(sealed, field="SecondSeal", reason="not registered"))

    out = io.StringIO()
    call_command("verify_agreement", str(good), stdout=out)
    assert f"{good}: VALID" in out.getvalue()
    assert sealed_agreement.case.reference in out.getvalue()
    for path in (bad, foreign):
        with pytest.raises(SystemExit) as exit_info:
            call_command("verify_agreement", str(path), stdout=io.StringIO())
        assert exit_info.value.code == 1, path
    # Without the register, the foreign file's signatures and seal are fine.
    call_command("verify_agreement", str(foreign), "--signatures-only", stdout=io.StringIO())


# --- Retention ----------------------------------------------------------------------------------------------


@pytest.fixture
def commented(frozen, party_a, party_b):
    """A comment and a proposal on the version being signed."""
    drafts.draft_comment(draft=frozen.draft, user=party_a, text="Please check the bank details.", origin=ORIGIN)
    drafts.draft_comment(draft=frozen.draft, user=party_b, text="Earlier, please.", section="ru.performance",
                         proposal="Банковским переводом до 1 ноября 2026 года.", origin=ORIGIN)


def test_when_the_case_content_is_destroyed_then_the_sealed_agreement_survives_and_still_verifies(
    commented, sealed_agreement, sealed, party_a, party_b, settings
):
    agreement = sealed_agreement
    case = agreement.case
    case.refresh_from_db()
    assert case.status == CaseStatus.SETTLED and case.closed_at is not None
    draft = agreement.draft
    assert drafts.draft_content(draft)  # readable before
    comments = list(DraftComment.objects.filter(draft=draft))
    assert [drafts.comment_texts(c)[0] for c in comments] == ["Please check the bank details.", "Earlier, please."]
    frozen_before = documents.frozen_pdf(agreement)

    due = case.closed_at + datetime.timedelta(days=settings.ODR_RETENTION_DAYS, minutes=1)
    assert retention.case_content_destroy(case_id=case.pk, now=due - datetime.timedelta(minutes=2)) is False
    assert retention.case_content_destroy(case_id=case.pk, now=due) is True

    agreement = Agreement.objects.select_related("case", "draft").get(pk=agreement.pk)
    assert agreement.case.content_destroyed_at is not None
    assert Draft.objects.get(pk=draft.pk).text_sealed is None
    assert [(c.text_sealed, c.proposal_sealed) for c in DraftComment.objects.filter(draft=draft)] == [(None, None)] * 2
    with pytest.raises(ContentDestroyed):
        drafts.draft_content(agreement.draft)
    assert agreement.frozen_pdf_sealed is None and agreement.working_pdf_sealed is None
    with pytest.raises(ContentDestroyed):
        documents.frozen_pdf(agreement)
    assert frozen_before and sealed.startswith(frozen_before)

    assert issuing.sealed_pdf(agreement) == sealed
    by_code = verify_code(agreement.verification_code.lower().replace("-", " "))
    assert by_code is not None and by_code.valid, by_code and by_code.report.reasons
    assert verify_file(sealed).valid

    for user in (party_a, party_b):
        client = Client()
        client.force_login(user)
        response = client.get(reverse("agreements:sealed_pdf", args=[case.public_id, agreement.public_id]))
        assert response.status_code == 200, user
        assert response.content == sealed
        assert response["Content-Type"] == "application/pdf"
