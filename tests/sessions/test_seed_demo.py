import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from odr.models import User
from sessions.models import Case, CaseStatus


def _seed(capsys, *args):
    call_command("seed_demo", *args)
    return capsys.readouterr().out


def test_when_seed_demo_runs_twice_then_data_is_created_once(db, capsys, settings):
    settings.ODR_DEMO_MODE = True
    _seed(capsys)
    _seed(capsys)
    assert User.objects.filter(email__endswith="@demo.kz").count() == 6
    case = Case.objects.get()
    assert case.status == CaseStatus.ACTIVE
    assert case.atm_acceptances.count() == 3
    assert User.objects.get(email="party1@demo.kz").check_password("demo-pass-2026")


def test_when_seed_demo_prints_json_then_accounts_and_case_are_listed(db, capsys, settings):
    settings.ODR_DEMO_MODE = True
    data = json.loads(_seed(capsys, "--json"))
    emails = {a["email"] for a in data["accounts"]}
    assert emails == {"admin@demo.kz", "mediator@demo.kz", "mediator2@demo.kz", "party1@demo.kz",
                      "party2@demo.kz", "court@demo.kz"}
    assert data["case"]["status"] == "active"
    assert {p["role"] for p in data["case"]["participants"]} == {"claimant", "respondent", "mediator"}


def test_when_not_in_demo_mode_then_seed_demo_refuses(db, settings):
    settings.DEBUG = False
    settings.ODR_DEMO_MODE = False
    with pytest.raises(CommandError):
        call_command("seed_demo")
    assert not User.objects.exists()


def test_when_demo_mediator_logs_in_in_demo_mode_then_no_2fa_is_asked(client, db, capsys, settings):
    settings.ODR_DEMO_MODE = True
    _seed(capsys)
    client.post("/accounts/login/", {"login": "mediator@demo.kz", "password": "demo-pass-2026"})
    assert client.get("/dashboard/").status_code == 200
    settings.ODR_DEMO_MODE = False
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/accounts/2fa/" in response["Location"]


def test_when_seeded_then_a_session_is_in_progress_with_rooms_listed_in_json(db, capsys, settings):
    settings.ODR_DEMO_MODE = True
    data = json.loads(_seed(capsys, "--json"))
    case = data["case"]
    assert case["session_open"] is True
    by_kind = {}
    for room in case["rooms"]:
        by_kind.setdefault(room["kind"], []).append(room)
    assert len(by_kind["joint"]) == 1 and len(by_kind["caucus"]) == 2
    joint = by_kind["joint"][0]
    assert {m["email"] for m in joint["members"]} == {"party1@demo.kz", "party2@demo.kz", "mediator@demo.kz"}
    for caucus in by_kind["caucus"]:
        assert caucus["open"] is True
        assert {m["email"] for m in caucus["members"]} in (
            {"party1@demo.kz", "mediator@demo.kz"}, {"party2@demo.kz", "mediator@demo.kz"},
        )
        assert caucus["ws_path"] == f"/ws/rooms/{caucus['id']}/"
    # Both parties are admitted to the joint room and to their own caucus: they can chat at once.
    from sessions.models import Admission, AdmissionStatus

    admitted = Admission.objects.filter(status=AdmissionStatus.ADMITTED)
    assert admitted.filter(room__kind="joint").count() == 2
    assert admitted.filter(room__kind="caucus").count() == 2
    # Seeding again keeps the running session (no second one).
    _seed(capsys)
    assert Case.objects.get().sittings.count() == 1
