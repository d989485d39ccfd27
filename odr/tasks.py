from django_tasks import task

from odr.mail import outbound_send


@task()
def send_email(*, email_id: str) -> None:
    """Deliver one sealed email of the outbox (odr.mail). Enqueued inside the
    transaction that caused it, so an email is sent if and only if its cause
    committed. The arguments name the email and carry none of it, and the
    job returns nothing: a finished job keeps no trace of what was said."""
    outbound_send(email_id=email_id)
