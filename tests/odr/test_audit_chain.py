import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from odr.audit import audit_record, audit_verify
from odr.models import AuditAction, AuditEvent


def _write_rows(user, n=3):
    return [
        audit_record(action=AuditAction.USER_PROFILE_CHANGED, actor=user, obj=user, details={"n": i})
        for i in range(n)
    ]


def _bypass_append_only_trigger():
    """What an attacker with the database owner's rights could do."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE odr_auditevent DISABLE TRIGGER odr_auditevent_append_only")
        else:
            cursor.execute("DROP TRIGGER odr_auditevent_append_only")


def test_when_rows_are_appended_then_chain_verifies(user_factory):
    user = user_factory()
    rows = _write_rows(user)
    assert [r.id for r in rows] == list(range(rows[0].id, rows[0].id + 3))
    assert rows[1].prev_hash == rows[0].hash
    report = audit_verify()
    assert report.ok, report.problems
    call_command("verify_audit")


def test_when_a_row_is_changed_then_verify_audit_fails(user_factory):
    user = user_factory()
    rows = _write_rows(user)
    _bypass_append_only_trigger()
    AuditEvent.objects.filter(pk=rows[1].pk).update(details={"n": 99})
    with pytest.raises(CommandError, match="Audit chain broken"):
        call_command("verify_audit")
    assert any(f"#{rows[1].id} was changed" in p for p in audit_verify().problems)


def test_when_a_row_is_deleted_then_verify_audit_fails(user_factory):
    user = user_factory()
    rows = _write_rows(user)
    _bypass_append_only_trigger()
    AuditEvent.objects.filter(pk=rows[1].pk)._raw_delete(connection.alias)
    with pytest.raises(CommandError):
        call_command("verify_audit")


def test_when_the_last_row_is_deleted_then_verify_audit_fails(user_factory):
    user = user_factory()
    rows = _write_rows(user)
    _bypass_append_only_trigger()
    AuditEvent.objects.filter(pk=rows[-1].pk)._raw_delete(connection.alias)
    report = audit_verify()
    assert not report.ok
    assert any("chain head" in p for p in report.problems)


def test_when_actor_is_recorded_then_ip_and_user_agent_are_kept(user_factory, origin):
    user = user_factory()
    event = audit_record(action=AuditAction.USER_LOGGED_IN, actor=user, origin=origin, obj=user)
    event.refresh_from_db()
    assert (event.ip, event.user_agent, event.actor_label) == ("203.0.113.7", "pytest", user.email)


def test_when_model_save_is_called_on_an_existing_row_then_it_refuses(user_factory):
    event = _write_rows(user_factory(), 1)[0]
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()


def test_when_sql_updates_an_audit_row_then_database_refuses(user_factory):
    event = _write_rows(user_factory(), 1)[0]
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(action="user.logged_out")
