"""Writing the draft mediation agreement; every version sealed at rest."""

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from agreements.models import Draft
from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.models import AuditAction, User
from sessions.models import Case
from sessions.services.confidentiality import case_cipher
from sessions.services.errors import ProcedureError

DRAFT_MAX_CHARS = 50_000


def draft_aad(draft: Draft) -> str:
    return f"agreement-draft:{draft.public_id}:text"


def draft_save(*, case: Case, user: User, text: str, origin: Origin = SYSTEM) -> Draft:
    """A new version of the draft, by the mediator."""
    policy.require(user, "agreement.edit_draft", case)
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise ProcedureError(_("The draft is empty."))
    if len(text) > DRAFT_MAX_CHARS:
        raise ProcedureError(_("The draft can be at most %(limit)d characters long.") % {"limit": DRAFT_MAX_CHARS})
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        version = (case.drafts.aggregate(v=Max("version"))["v"] or 0) + 1
        draft = Draft(case=case, version=version, created_by=user)
        draft.text_sealed = case_cipher(case).seal_text(text, aad=draft_aad(draft))
        draft.save(force_insert=True)
        audit_record(
            action=AuditAction.DRAFT_SAVED, actor=user, origin=origin, obj=case,
            details={"draft": str(draft.public_id), "version": version},
        )
    draft.text = text
    return draft


def draft_text(draft: Draft) -> str:
    """The text of a draft version (ContentDestroyed once shredded)."""
    return case_cipher(draft.case).open_text(draft.text_sealed, aad=draft_aad(draft))


def drafts_destroy(*, sender, case: Case, **kwargs) -> None:
    """Retention: a destroyed case keeps its draft versions' numbers and
    dates, not their text."""
    Draft.objects.filter(case=case).update(text_sealed=None)

