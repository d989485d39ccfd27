"""Jobs on the durable queue (django-tasks, database backend)."""

from django_tasks import task


@task()
def seal_agreement(*, agreement_id: int) -> bool:
    """Seal a fully signed agreement (idempotent; see services.issuing)."""
    from agreements.services.issuing import agreement_seal

    return agreement_seal(agreement_id=agreement_id)
