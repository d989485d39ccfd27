"""Emails queued before the sealed outbox carried their subject and body (reset
links, signing codes, invitation links) as the job's arguments. Emails still
waiting are moved into sealed `OutboundEmail` rows and their jobs point at
them; finished jobs lose their arguments and return value."""

import json
import uuid

from django.db import migrations

TASK = "odr.tasks.send_email"
WAITING = ("READY", "RUNNING")


def seal_queued_emails(apps, schema_editor):
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    OutboundEmail = apps.get_model("odr", "OutboundEmail")
    jobs = DBTaskResult.objects.filter(task_path=TASK)
    for job in jobs.iterator():
        kwargs = (job.args_kwargs or {}).get("kwargs") or {}
        if "email_id" in kwargs:
            continue
        if job.status in WAITING and "body" in kwargs:
            # Sealing needs the master key, read only when there is something to seal.
            from odr import crypto
            from odr.mail import KEY_PURPOSE, outbox_aad

            public_id = uuid.uuid4()
            content = {
                "subject": kwargs.get("subject", ""), "body": kwargs["body"],
                "to": list(kwargs.get("to") or []), "html": kwargs.get("html"),
            }
            sealed = crypto.platform_cipher(KEY_PURPOSE).seal_text(json.dumps(content), aad=outbox_aad(public_id))
            OutboundEmail.objects.create(public_id=public_id, kind="queued-before-outbox", sealed=sealed)
            job.args_kwargs = {"args": [], "kwargs": {"email_id": str(public_id)}}
        else:
            job.args_kwargs = {"args": [], "kwargs": {}}
            job.return_value = None
        job.save(update_fields=["args_kwargs", "return_value"])


class Migration(migrations.Migration):
    dependencies = [
        ("odr", "0009_outbound_email"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(seal_queued_emails, migrations.RunPython.noop)]
