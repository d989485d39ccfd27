"""Who may draft, comment on, freeze, sign, decline, withdraw and download
a case's mediation agreement. Objects: the case (drafting), or the
Agreement (signing and the sealed PDF)."""

from odr.policy import rule
from sessions.models import CaseStatus, ParticipantStatus, Role
from sessions.policies import participant_of, undertaken


def undertaking_pending(user, case) -> bool:
    """Would read the draft but for the confidentiality undertaking: the
    agreement pages send such a participant to it first."""
    participant = participant_of(user, case)
    return (
        participant is not None
        and participant.status == ParticipantStatus.ACTIVE
        and participant.role != Role.OBSERVER
        and case.status in (CaseStatus.ACTIVE, CaseStatus.SETTLED)
        and case.content_destroyed_at is None
        and not undertaken(participant)
    )


@rule("agreement.view_draft")
def _view_draft(user, case) -> bool:
    """The parties, their representatives and the mediator (not observers),
    bound by the undertaking, while the content exists."""
    participant = participant_of(user, case)
    return (
        participant is not None
        and participant.status == ParticipantStatus.ACTIVE
        and participant.role != Role.OBSERVER
        and case.status in (CaseStatus.ACTIVE, CaseStatus.SETTLED)
        and case.content_destroyed_at is None
        and undertaken(participant)
    )


@rule("agreement.edit_draft")
def _edit_draft(user, case) -> bool:
    participant = participant_of(user, case)
    return (
        _view_draft(user, case)
        and participant.role == Role.MEDIATOR
        and case.status == CaseStatus.ACTIVE
    )


@rule("agreement.comment")
def _comment(user, case) -> bool:
    """Anyone who reads the draft comments on it while the mediation runs;
    proposals are how the parties ask for changes."""
    return _view_draft(user, case) and case.status == CaseStatus.ACTIVE


@rule("agreement.freeze")
def _freeze(user, case) -> bool:
    return _edit_draft(user, case)


def _signer(user, agreement):
    """The user's place among the agreement's signatories, while they still
    take part in an active case and are bound by the undertaking."""
    from agreements.models import AgreementStatus

    if agreement.status != AgreementStatus.SIGNING or agreement.case.status != CaseStatus.ACTIVE:
        return None
    if not _view_draft(user, agreement.case):
        return None
    return agreement.signers.filter(user=user).first()


@rule("agreement.sign")
def _sign(user, agreement) -> bool:
    from agreements.models import SignerStatus

    signer = _signer(user, agreement)
    return signer is not None and signer.status == SignerStatus.PENDING


@rule("agreement.decline")
def _decline(user, agreement) -> bool:
    """A signatory may decline even after signing, until all have signed."""
    return _signer(user, agreement) is not None


@rule("agreement.withdraw")
def _withdraw(user, agreement) -> bool:
    from agreements.models import AgreementStatus

    return agreement.status == AgreementStatus.SIGNING and _edit_draft(user, agreement.case)


@rule("agreement.download")
def _download(user, agreement) -> bool:
    """The sealed agreement belongs to the parties and the mediator (and the
    parties' representatives); it outlives the case's other content."""
    from agreements.models import AgreementStatus

    participant = participant_of(user, agreement.case)
    return (
        agreement.status == AgreementStatus.SEALED
        and participant is not None
        and participant.status == ParticipantStatus.ACTIVE
        and participant.role != Role.OBSERVER
    )


@rule("agreement.view_page")
def _view_page(user, case) -> bool:
    """The agreement page: whoever reads the draft, and, once the content is
    destroyed, whoever may still download the sealed agreement."""
    if _view_draft(user, case):
        return True
    sealed = case.agreements.filter(status="sealed").first()
    return sealed is not None and _download(user, sealed)


@rule("agreement.file")
def _file(user, agreement) -> bool:
    """A party or the mediator files the sealed agreement with the court."""
    from agreements.models import AgreementStatus

    participant = participant_of(user, agreement.case)
    return (
        agreement.status == AgreementStatus.SEALED
        and participant is not None
        and participant.status == ParticipantStatus.ACTIVE
        and participant.role in (Role.CLAIMANT, Role.RESPONDENT, Role.MEDIATOR)
    )


@rule("filing.view")
def _filing_view(user, filing) -> bool:
    """The filing's status: everyone who may open the case's agreement page."""
    return _view_page(user, filing.case)


@rule("filing.court")
def _filing_court(user, filing) -> bool:
    """The court's users (with 2FA) see, download and answer the filings
    made to their court, and only those."""
    from odr.policy import can, court_of

    return can(user, "court.work") and court_of(user) == filing.court
