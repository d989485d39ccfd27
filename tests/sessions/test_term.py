import datetime

import pytest
from django.core.exceptions import PermissionDenied

from sessions.models import ExtensionStatus
from sessions.services import procedure
from sessions.services.errors import ProcedureError


def _later(case, days=14):
    return case.term_ends_on + datetime.timedelta(days=days)


def test_when_every_party_consents_then_the_term_is_extended(active_case, party_a, party_b, mediator, origin):
    new_end = _later(active_case)
    extension = procedure.term_extension_propose(case=active_case, user=mediator, new_ends_on=new_end, reason="More time", origin=origin)
    procedure.term_extension_answer(case=active_case, user=party_a, consents=True, origin=origin)
    active_case.refresh_from_db()
    assert active_case.term_ends_on != new_end  # one party is not enough
    procedure.term_extension_answer(case=active_case, user=party_b, consents=True, origin=origin)
    active_case.refresh_from_db()
    extension.refresh_from_db()
    assert active_case.term_ends_on == new_end and extension.status == ExtensionStatus.APPROVED


def test_when_one_party_refuses_then_the_term_stays(active_case, party_a, party_b, origin):
    old_end = active_case.term_ends_on
    extension = procedure.term_extension_propose(case=active_case, user=party_a, new_ends_on=_later(active_case), reason="Need documents", origin=origin)
    procedure.term_extension_answer(case=active_case, user=party_b, consents=False, origin=origin)
    active_case.refresh_from_db()
    extension.refresh_from_db()
    assert active_case.term_ends_on == old_end and extension.status == ExtensionStatus.REFUSED


def test_when_extension_is_bad_then_it_is_refused(active_case, party_a, mediator, origin):
    with pytest.raises(ProcedureError):
        procedure.term_extension_propose(case=active_case, user=party_a, new_ends_on=active_case.term_ends_on, reason="x", origin=origin)
    with pytest.raises(ProcedureError):
        procedure.term_extension_propose(case=active_case, user=party_a, new_ends_on=_later(active_case), reason="  ", origin=origin)
    procedure.term_extension_propose(case=active_case, user=party_a, new_ends_on=_later(active_case), reason="x", origin=origin)
    with pytest.raises(PermissionDenied):  # one pending proposal at a time
        procedure.term_extension_propose(case=active_case, user=mediator, new_ends_on=_later(active_case, 20), reason="y", origin=origin)
    with pytest.raises(PermissionDenied):  # the mediator does not consent for the parties
        procedure.term_extension_answer(case=active_case, user=mediator, consents=True, origin=origin)
