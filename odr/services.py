from django.conf import settings
from django.db import transaction

from odr.audit import Origin, audit_record
from odr.mail import email_enqueue
from odr.models import AuditAction, User

_PROFILE_FIELDS = ("display_name", "phone", "preferred_language")


def user_profile_update(*, user: User, changes: dict, origin: Origin) -> User:
    """Changes are compared with the stored row, not with `user`: a model
    form has already written the new values onto the object it was given."""
    with transaction.atomic():
        stored = User.objects.select_for_update().get(pk=user.pk)
        changed = {
            field: value
            for field, value in changes.items()
            if field in _PROFILE_FIELDS and getattr(stored, field) != value
        }
        if not changed:
            return stored
        for field, value in changed.items():
            setattr(stored, field, value)
        stored.full_clean(exclude=["password"])
        stored.save(update_fields=list(changed))
        for field in changed:
            setattr(user, field, getattr(stored, field))
        audit_record(
            action=AuditAction.USER_PROFILE_CHANGED,
            actor=user,
            origin=origin,
            obj=user,
            details={"fields": sorted(changed)},
        )
    return user


def login_failures_notify(*, email: str, failures: int, ip: str) -> None:
    """Tell an account's owner that someone keeps failing to sign in as them
    (nothing is sent for an address with no account, and the page answers
    the same either way: no enumeration)."""
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        return
    email_enqueue(
        to=user.email, template="odr/email/login_failures", language=user.preferred_language,
        context={"user": user, "failures": failures, "ip": ip, "site_url": settings.SITE_URL},
    )
