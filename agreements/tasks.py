"""Jobs on the durable queue (django-tasks, database backend)."""

from django_tasks import task


@task()
def seal_agreement(*, agreement_id: int) -> bool:
    """Seal a fully signed agreement (idempotent; see services.issuing)."""
    from agreements.services.issuing import agreement_seal

    return agreement_seal(agreement_id=agreement_id)


@task()
def deliver_filing(*, delivery_id: int) -> bool:
    """One delivery attempt of a filing (idempotent; see services.filing)."""
    from agreements.services.filing import delivery_attempt

    return delivery_attempt(delivery_id=delivery_id)
