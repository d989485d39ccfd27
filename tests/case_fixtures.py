"""Cases at each stage of the procedure, built through the real services."""

import pytest

from odr.models import Specialisation
from sessions import agreement_to_mediate
from sessions.models import Case
from sessions.services import intake, invitations, mediators, procedure


@pytest.fixture
def application_factory():
    def make(*others, mediator=None, language="ru", category=Specialisation.CIVIL, **extra):
        return intake.Application(
            category=category,
            description="Neighbours disagree about a shared fence.",
            language=language,
            other_parties=[intake.OtherParty(name=o.display_name, email=o.email) for o in others],
            mediator=mediator,
            **extra,
        )

    return make


@pytest.fixture
def invited_case(party_a, party_b, mediator, application_factory, origin) -> Case:
    return intake.case_file(claimant=party_a, application=application_factory(party_b, mediator=mediator), origin=origin)


def accept_all_invitations(case, *users, origin):
    for user in users:
        invitation = case.invitations.get(email=user.email)
        invitations.invitation_accept(invitation=invitation, user=user, origin=origin)


def accept_atm(case, user, origin):
    case.refresh_from_db()
    text = agreement_to_mediate.render(case=case, language=case.language)
    return procedure.atm_accept(case=case, user=user, text_sha256=agreement_to_mediate.digest(text), origin=origin)


def accept_undertaking(case, user, origin=None):
    """The user accepts the case's confidentiality undertaking, as shown."""
    from odr.audit import SYSTEM
    from sessions.services import confidentiality

    case.refresh_from_db()
    text = confidentiality.undertaking_render(case=case, language=case.language)
    return confidentiality.undertaking_accept(
        case=case, user=user, text_sha256=confidentiality.undertaking_digest(text),
        language=case.language, origin=origin or SYSTEM,
    )


@pytest.fixture
def accepted_case(invited_case, party_b, mediator, origin) -> Case:
    accept_all_invitations(invited_case, party_b, origin=origin)
    mediators.mediator_answer(case=invited_case, user=mediator, accept=True, reason="", origin=origin)
    invited_case.refresh_from_db()
    return invited_case


@pytest.fixture
def active_case(accepted_case, party_a, party_b, mediator, origin) -> Case:
    for user in (party_a, party_b, mediator):
        accept_atm(accepted_case, user, origin)
    for user in (party_a, party_b, mediator):
        accept_undertaking(accepted_case, user, origin)
    accepted_case.refresh_from_db()
    return accepted_case


@pytest.fixture
def one_user_per_role(party_a, party_b, mediator, mediator_factory, court_user, admin_user, user_factory):
    """One user per role of the access tables; the representative will act
    for the respondent, the observer will be invited to the case."""
    from django.contrib.auth.models import AnonymousUser

    return {
        "claimant": party_a,
        "respondent": party_b,
        "representative": user_factory("representative@example.kz", display_name="Rustem Representative"),
        "mediator": mediator,
        "other_mediator": mediator_factory("other.mediator@example.kz", display_name="Other Mediator"),
        "observer": user_factory("observer@example.kz", display_name="Olga Observer"),
        "court_user": court_user,
        "admin": admin_user,
        "stranger": user_factory("stranger@example.kz", display_name="Stan Stranger"),
        "anonymous": AnonymousUser(),
    }
