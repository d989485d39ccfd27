"""What signing and sealing share: the sealed-at-rest PDFs of an agreement,
its document as the pages show it, and the emails to its signatories."""

from django.conf import settings
from django.utils import timezone

from agreements import rendering
from agreements.models import Agreement
from agreements.services.drafts import draft_content
from odr.mail import email_enqueue
from odr.models import User
from sessions.models import Case
from sessions.services.confidentiality import case_cipher
from sessions.services.procedure import atm_signatories


def agreement_key(agreement: Agreement, part: str) -> str:
    return f"agreement:{agreement.public_id}:{part}"


def agreement_people(agreement: Agreement) -> list[rendering.Person]:
    return [
        rendering.Person(name=s.user.display_name, role=s.role, field=s.field_name)
        for s in agreement.signers.select_related("user")
    ]


def agreement_document(agreement: Agreement) -> dict:
    """The frozen version's document context (for the signing page)."""
    return rendering.document_context(
        reference=agreement.case.reference or "", layout=agreement.layout, content=draft_content(agreement.draft),
        people=agreement_people(agreement), date=timezone.localdate(agreement.frozen_at),
        verification_code=agreement.verification_code,
    )


def frozen_pdf(agreement: Agreement) -> bytes:
    return case_cipher(agreement.case).open(agreement.frozen_pdf_sealed, aad=agreement_key(agreement, "frozen"))


def working_pdf(agreement: Agreement) -> bytes:
    """The frozen PDF with the own-certificate signatures made so far."""
    if agreement.working_pdf_sealed is None:
        return frozen_pdf(agreement)
    return case_cipher(agreement.case).open(agreement.working_pdf_sealed, aad=agreement_key(agreement, "working"))


def notify_signatories(case: Case, template: str, *, exclude: User | None = None, **extra) -> None:
    for participant in atm_signatories(case):
        if exclude is not None and participant.user_id == exclude.pk:
            continue
        email_enqueue(
            to=participant.user.email, template=template, language=participant.user.preferred_language,
            context={"case": case, "participant": participant, "site_url": settings.SITE_URL, **extra},
        )


