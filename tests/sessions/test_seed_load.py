"""`manage.py seed_load`: the benchmark's rooms are real, usable rooms."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from sessions.models import AdmissionStatus, CaseStatus, Room, Role

pytestmark = pytest.mark.django_db


def test_when_seeded_then_every_member_is_admitted_and_their_session_opens_the_room(tmp_path, settings):
    out = tmp_path / "load.json"
    call_command("seed_load", rooms=2, participants=6, out=str(out), prefix="t", allow_without_debug=True)
    fixtures = json.loads(out.read_text())

    assert len(fixtures["rooms"]) == 2
    for entry in fixtures["rooms"]:
        room = Room.objects.select_related("case").get(public_id=entry["room"])
        assert room.case.status == CaseStatus.ACTIVE and room.is_open
        roles = [m["role"] for m in entry["members"]]
        assert roles == [Role.MEDIATOR, Role.CLAIMANT, Role.RESPONDENT, Role.REPRESENTATIVE, Role.REPRESENTATIVE,
                         Role.OBSERVER]
        admitted = set(room.admissions.filter(status=AdmissionStatus.ADMITTED)
                       .values_list("participant__public_id", flat=True))
        for member in entry["members"]:
            if member["role"] != Role.MEDIATOR:
                assert any(str(p) == member["participant"] for p in admitted), member
            # The stored session is a login: the room page opens with it.
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = member["session"]
            response = client.get(reverse("mediation:room", args=[room.public_id]))
            assert response.status_code == 200, (member["role"], response.status_code)


def test_when_debug_is_off_and_not_allowed_then_it_refuses(tmp_path, settings):
    settings.DEBUG = False
    settings.ODR_DEMO_MODE = False
    with pytest.raises(CommandError, match="thousands of accounts"):
        call_command("seed_load", rooms=1, out=str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()
