from django.db import transaction

from odr.audit import Origin, audit_record
from odr.models import AuditAction, User

_PROFILE_FIELDS = ("display_name", "phone", "preferred_language")


def user_profile_update(*, user: User, changes: dict, origin: Origin) -> User:
    changed = {
        field: value
        for field, value in changes.items()
        if field in _PROFILE_FIELDS and getattr(user, field) != value
    }
    if not changed:
        return user
    with transaction.atomic():
        for field, value in changed.items():
            setattr(user, field, value)
        user.full_clean(exclude=["password"])
        user.save(update_fields=list(changed))
        audit_record(
            action=AuditAction.USER_PROFILE_CHANGED,
            actor=user,
            origin=origin,
            obj=user,
            details={"fields": sorted(changed)},
        )
    return user
