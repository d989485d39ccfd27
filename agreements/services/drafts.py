"""Drafting the mediation agreement: versions, comments and proposed
changes, the differences between versions; every word sealed at rest with
the case's key."""

import difflib
import json
import re
from collections.abc import Mapping

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from agreements import texts
from agreements.models import (
    LAYOUT_LANGUAGES,
    OPEN_AGREEMENT_STATUSES,
    Agreement,
    CommentKind,
    Draft,
    DraftComment,
    Layout,
)
from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.models import AuditAction, User
from sessions.models import Case
from sessions.policies import participant_of
from sessions.services.confidentiality import case_cipher
from sessions.services.errors import ProcedureError

COMMENT_MAX_CHARS = 5_000

# The sections as the interface names them (the document's own headings are
# in agreements.texts, in the document's language).
FIELD_LABELS = {
    "place": gettext_lazy("Place of conclusion"),
    "subject": gettext_lazy("Subject of the dispute"),
    "terms": gettext_lazy("Terms agreed by the parties"),
    "performance": gettext_lazy("Deadlines and manner of performance"),
    "non_performance": gettext_lazy("Consequences of non-performance"),
}


def draft_aad(draft: Draft) -> str:
    return f"agreement-draft:{draft.public_id}:text"


def comment_aad(comment: DraftComment, part: str) -> str:
    return f"agreement-comment:{comment.public_id}:{part}"


def section_keys(layout: str) -> list[str]:
    """The sections of a layout, "<language>.<field>", in document order."""
    return [f"{language}.{name}" for name in texts.FIELDS for language in LAYOUT_LANGUAGES[layout]]


def section_label(key: str) -> str:
    language, name = key.split(".", 1)
    language_names = dict(Layout.choices)
    return f"{FIELD_LABELS[name]} ({language_names[language]})"


def draft_defaults(*, layout: str) -> dict[str, str]:
    """What a first draft starts from: the template's default wording."""
    return {
        key: texts.DEFAULTS[key.split(".")[0]].get(key.split(".")[1], "")
        for key in section_keys(layout)
    }


def _clean(value: str) -> str:
    return (value or "").replace("\r\n", "\n").strip()


def draft_save(
    *, case: Case, user: User, fields: Mapping[str, str] | None = None, terms: str | None = None,
    layout: str | None = None, origin: Origin = SYSTEM,
) -> Draft:
    """A new version of the draft, by the mediator. `fields` maps
    "<language>.<field>" to text, as the drafting form posts it; `terms` is
    a shorthand that writes the same agreed terms in every language of the
    layout, for callers that have nothing else to say (scripts and tests)."""
    policy.require(user, "agreement.edit_draft", case)
    layout = layout or (case.drafts.values_list("layout", flat=True).first() or case.language)
    if layout not in Layout.values:
        raise ProcedureError(_("Choose one of the offered layouts."), code="bad_layout")
    content = {key: _clean((fields or {}).get(key, "")) for key in section_keys(layout)}
    if terms is not None:
        for language in LAYOUT_LANGUAGES[layout]:
            content[f"{language}.terms"] = _clean(terms)
    if not any(content.values()):
        raise ProcedureError(_("The draft is empty."), code="empty")
    for key, value in content.items():
        if len(value) > texts.FIELD_MAX_CHARS:
            raise ProcedureError(
                _("“%(section)s” can be at most %(limit)d characters long.")
                % {"section": section_label(key), "limit": texts.FIELD_MAX_CHARS},
                code="too_long",
            )
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.agreements.filter(status__in=OPEN_AGREEMENT_STATUSES).exists():
            raise ProcedureError(
                _("The draft is frozen for signing. Withdraw it from signing to revise it."), code="frozen"
            )
        latest = case.drafts.first()
        if latest is not None and latest.layout == layout and draft_content(latest) == content:
            raise ProcedureError(
                _("Nothing changed since version %(version)d.") % {"version": latest.version}, code="unchanged"
            )
        version = (case.drafts.aggregate(v=Max("version"))["v"] or 0) + 1
        draft = Draft(case=case, version=version, layout=layout, created_by=user)
        draft.text_sealed = case_cipher(case).seal_text(
            json.dumps({"v": 1, "content": content}, ensure_ascii=False), aad=draft_aad(draft)
        )
        draft.save(force_insert=True)
        audit_record(
            action=AuditAction.DRAFT_SAVED, actor=user, origin=origin, obj=case,
            details={"draft": str(draft.public_id), "version": version, "layout": layout},
        )
    return draft


def draft_content(draft: Draft) -> dict[str, str]:
    """The sections of a version, "<language>.<field>" → text, for every
    section of its layout (ContentDestroyed once shredded). A version saved
    before drafts had sections holds plain text: its agreed terms."""
    raw = case_cipher(draft.case).open_text(draft.text_sealed, aad=draft_aad(draft))
    try:
        stored = json.loads(raw)["content"]
    except (ValueError, KeyError, TypeError):
        stored = {f"{LAYOUT_LANGUAGES[draft.layout][0]}.terms": raw}
    return {key: stored.get(key, "") for key in section_keys(draft.layout)}


def draft_text(draft: Draft) -> str:
    """The words of a version as one text, sections in document order."""
    return "\n\n".join(value for value in draft_content(draft).values() if value)


def draft_missing_sections(draft: Draft) -> list[str]:
    """The required sections left empty (a draft with any cannot be frozen)."""
    content = draft_content(draft)
    return [key for key in section_keys(draft.layout) if not content[key]]


def draft_comment(
    *, draft: Draft, user: User, text: str, section: str = "", proposal: str = "", origin: Origin = SYSTEM
) -> DraftComment:
    """A comment on a version, or a proposed wording for one of its sections."""
    case = draft.case
    policy.require(user, "agreement.comment", case)
    text, proposal = _clean(text), _clean(proposal)
    if section and section not in section_keys(draft.layout):
        raise ProcedureError(_("Choose a section of this draft."), code="bad_section")
    if proposal and not section:
        raise ProcedureError(_("Choose the section your proposal rewrites."), code="bad_section")
    if not text and not proposal:
        raise ProcedureError(_("Write a comment or a proposed wording."), code="empty")
    if len(text) > COMMENT_MAX_CHARS or len(proposal) > texts.FIELD_MAX_CHARS:
        raise ProcedureError(_("The comment is too long."), code="too_long")
    participant = participant_of(user, case)
    with transaction.atomic():
        comment = DraftComment(
            draft=draft, author=user, role=participant.role, section=section if proposal else "",
            kind=CommentKind.PROPOSAL if proposal else CommentKind.COMMENT,
        )
        cipher = case_cipher(case)
        comment.text_sealed = cipher.seal_text(text, aad=comment_aad(comment, "text"))
        if proposal:
            comment.proposal_sealed = cipher.seal_text(proposal, aad=comment_aad(comment, "proposal"))
        comment.save(force_insert=True)
        audit_record(
            action=AuditAction.DRAFT_COMMENTED, actor=user, origin=origin, obj=case,
            details={"draft": str(draft.public_id), "version": draft.version, "kind": comment.kind},
        )
    return comment


def comment_texts(comment: DraftComment) -> tuple[str, str]:
    """(comment, proposed wording) of a comment."""
    cipher = case_cipher(comment.draft.case)
    text = cipher.open_text(comment.text_sealed, aad=comment_aad(comment, "text"))
    proposal = (
        cipher.open_text(comment.proposal_sealed, aad=comment_aad(comment, "proposal"))
        if comment.proposal_sealed is not None else ""
    )
    return text, proposal


_TOKEN = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """The change from `old` to `new` word by word: ("equal" | "delete" |
    "insert", text) pieces, for <del>/<ins> in a page."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    pieces = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("equal", "delete"):
            pieces.append((op, "".join(a[i1:i2])))
        elif op == "insert":
            pieces.append((op, "".join(b[j1:j2])))
        else:  # replace
            pieces.append(("delete", "".join(a[i1:i2])))
            pieces.append(("insert", "".join(b[j1:j2])))
    return pieces


def drafts_compare(older: Draft, newer: Draft) -> list[dict]:
    """Every section of either version, with its word differences and
    whether it changed."""
    old, new = draft_content(older), draft_content(newer)
    keys = list(dict.fromkeys([*new, *old]))
    return [
        {"key": key, "label": section_label(key), "changed": old.get(key, "") != new.get(key, ""),
         "pieces": word_diff(old.get(key, ""), new.get(key, ""))}
        for key in keys
    ]


def drafts_destroy(*, sender, case: Case, **kwargs) -> None:
    """Retention: a destroyed case keeps its versions' numbers and dates and
    its agreements' records, not their words. The sealed agreement stays
    (it is sealed with the platform's key, not the case's)."""
    Draft.objects.filter(case=case).update(text_sealed=None)
    DraftComment.objects.filter(draft__case=case).update(text_sealed=None, proposal_sealed=None)
    Agreement.objects.filter(case=case).update(
        frozen_pdf_sealed=None, working_pdf_sealed=None, end_reason_sealed=None
    )
