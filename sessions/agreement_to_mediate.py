"""The agreement to mediate: a versioned text rendered for one case.

Acceptance records the version and the SHA-256 of the exact text shown, so a
change of text (or of the case's particulars) between reading and accepting
is detected. Change VERSION whenever the template's wording changes.
"""

import hashlib

from django.template.loader import render_to_string
from django.utils import translation

from sessions.models import PARTY_ROLES, Case, ParticipantStatus, Role

VERSION = "2026.2"  # 2026.2: the Kazakh and Russian wording
TEMPLATE = "mediation/texts/agreement_to_mediate.txt"


def render(*, case: Case, language: str) -> str:
    participants = case.participants.filter(status=ParticipantStatus.ACTIVE).select_related(
        "user", "user__mediator_profile"
    )
    parties = [p for p in participants if p.role in PARTY_ROLES]
    mediator = next((p for p in participants if p.role == Role.MEDIATOR), None)
    return render_text(
        TEMPLATE,
        language,
        {
            "case": case,
            "parties": parties,
            "mediator": mediator,
            "profile": getattr(mediator.user, "mediator_profile", None) if mediator else None,
            "version": VERSION,
        },
    )


def render_text(template: str, language: str, context: dict) -> str:
    """A versioned text for acceptance, normalised so that its digest depends
    on the words only (the confidentiality undertaking uses it too)."""
    with translation.override(language):
        text = render_to_string(template, context)
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
