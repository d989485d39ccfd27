"""The sealed outbox: emails wait in the queue as an id and a sealed row, the
row goes once the email is sent, the admin lists jobs by their metadata
only, and the jobs queued before the outbox are sealed or emptied by the
migration."""

import datetime
import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from odr import crypto
from odr.mail import KEY_PURPOSE, email_enqueue, outbox_aad, outbox_purge
from odr.models import OutboundEmail

pytestmark = pytest.mark.django_db

SECRET_LINK = "https://odr.example.kz/accounts/password/reset/key/9-c0ffee-5ec7e7/"


def _queue_one(party_a) -> OutboundEmail:
    return email_enqueue(
        to=party_a.email, template="odr/email/login_failures", language="en",
        context={"user": party_a, "failures": 5, "ip": "203.0.113.9", "site_url": SECRET_LINK},
    )


def test_when_an_email_is_queued_then_the_job_names_a_sealed_row_and_carries_none_of_it(party_a):
    email = _queue_one(party_a)

    (job,) = DBTaskResult.objects.filter(task_path="odr.tasks.send_email")
    assert job.args_kwargs == {"args": [], "kwargs": {"email_id": str(email.public_id)}}
    sealed = bytes(OutboundEmail.objects.get(pk=email.pk).sealed)
    assert SECRET_LINK.encode() not in sealed and party_a.email.encode() not in sealed
    assert email.kind == "odr/email/login_failures"
    # It opens with the platform's key, and as its own row only.
    content = json.loads(crypto.platform_cipher(KEY_PURPOSE).open_text(sealed, aad=outbox_aad(email.public_id)))
    assert content["to"] == [party_a.email] and SECRET_LINK in content["body"]
    with pytest.raises(crypto.UndecryptableError):
        crypto.platform_cipher(KEY_PURPOSE).open_text(sealed, aad=outbox_aad("another-row"))


def test_when_the_worker_sends_it_then_it_is_delivered_once_and_the_row_is_gone(party_a, run_jobs, outbox):
    email = _queue_one(party_a)

    run_jobs()

    (message,) = outbox
    assert message.to == [party_a.email] and SECRET_LINK in message.body
    assert message.subject == "Failed attempts to sign in to your account"
    assert not OutboundEmail.objects.filter(pk=email.pk).exists()
    (job,) = DBTaskResult.objects.filter(task_path="odr.tasks.send_email")
    assert job.status == TaskResultStatus.SUCCESSFUL and job.return_value is None

    # The same job run again (a retry) finds nothing to send.
    from odr.mail import outbound_send

    assert outbound_send(email_id=str(email.public_id)) is False
    assert len(outbox) == 1


def test_when_undelivered_emails_are_a_week_old_then_the_sweep_purges_them(party_a):
    old = _queue_one(party_a)
    OutboundEmail.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=8))
    fresh = _queue_one(party_a)

    assert outbox_purge() == 1

    assert list(OutboundEmail.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_when_an_admin_opens_the_job_queue_then_only_metadata_is_shown(party_a, admin_user, run_jobs):
    _queue_one(party_a)
    run_jobs()
    _queue_one(party_a)  # one still waiting
    client = Client()
    client.force_login(admin_user)

    listing = client.get("/admin/django_tasks_database/dbtaskresult/")
    assert listing.status_code == 200
    for job in DBTaskResult.objects.all():
        page = client.get(f"/admin/django_tasks_database/dbtaskresult/{job.pk}/change/")
        assert page.status_code == 200
        text = page.content.decode()
        assert "odr.tasks.send_email" in text
        assert "email_id" not in text and "args kwargs" not in text.lower() and "return value" not in text.lower()
        assert SECRET_LINK not in text and party_a.email not in text


# --- The migration --------------------------------------------------------------------------------


def _legacy_job(status: str, **kwargs) -> DBTaskResult:
    return DBTaskResult.objects.create(
        task_path="odr.tasks.send_email", backend_name="default", status=status, run_after=timezone.now(),
        args_kwargs={"args": [], "kwargs": kwargs}, return_value=None,
    )


def test_when_jobs_queued_before_the_outbox_are_migrated_then_waiting_ones_are_sealed_and_finished_ones_emptied(
    run_jobs, outbox
):
    body = f"Reset your password: {SECRET_LINK}\n"
    waiting = _legacy_job(TaskResultStatus.READY, subject="Password reset", body=body, to=["someone@example.kz"])
    sent = _legacy_job(TaskResultStatus.SUCCESSFUL, subject="Your code", body="    123456\n", to=["x@example.kz"])
    migration = importlib.import_module("odr.migrations.0010_seal_queued_emails")

    migration.seal_queued_emails(django_apps, None)

    sent.refresh_from_db()
    assert sent.args_kwargs == {"args": [], "kwargs": {}}
    waiting.refresh_from_db()
    (email,) = OutboundEmail.objects.all()
    assert waiting.args_kwargs == {"args": [], "kwargs": {"email_id": str(email.public_id)}}
    assert SECRET_LINK.encode() not in bytes(email.sealed)
    # Run again: nothing changes (a migration applied twice by a restore).
    migration.seal_queued_emails(django_apps, None)
    assert OutboundEmail.objects.count() == 1

    run_jobs()

    (message,) = outbox
    assert message.to == ["someone@example.kz"] and message.body == body and message.subject == "Password reset"
    assert not OutboundEmail.objects.exists()
