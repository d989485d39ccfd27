"""The policy module: the one place that answers "may user U do A on O?".

Rules are registered per action by the package that owns the object
(`sessions/policies.py`, later `agreements/policies.py`), so `odr` does not
import them; views, consumers and services only ever ask `can` / `require`
here. An action without a rule is denied.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

Rule = Callable[[Any, Any], bool]
_RULES: dict[str, Rule] = {}


class Global:
    """Global roles. Every registered user may be a party."""

    PARTY = "party"
    MEDIATOR = "mediator"
    COURT_USER = "court_user"
    ADMIN = "admin"


def rule(action: str) -> Callable[[Rule], Rule]:
    def register(func: Rule) -> Rule:
        if action in _RULES:
            raise RuntimeError(f"policy rule for {action!r} registered twice")
        _RULES[action] = func
        return func

    return register


def registered_actions() -> list[str]:
    return sorted(_RULES)


def can(user, action: str, obj: Any = None) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    check = _RULES.get(action)
    if check is None:
        return False
    return bool(check(user, obj))


def require(user, action: str, obj: Any = None, *, hide: bool = False) -> None:
    """Raise unless allowed. `hide` answers 404, so that ids of objects the
    user may not know about reveal nothing."""
    if not can(user, action, obj):
        if hide:
            raise Http404
        raise PermissionDenied(action)


# --- Global roles --------------------------------------------------------------


def global_roles(user) -> set[str]:
    if user is None or not user.is_authenticated:
        return set()
    roles = {Global.PARTY}
    if is_mediator(user):
        roles.add(Global.MEDIATOR)
    if court_of(user) is not None:
        roles.add(Global.COURT_USER)
    if user.is_staff:
        roles.add(Global.ADMIN)
    return roles


def is_mediator(user) -> bool:
    return hasattr(user, "mediator_profile")


def is_active_mediator(user) -> bool:
    return is_mediator(user) and user.mediator_profile.is_active and user.is_active


def court_of(user):
    court_user = getattr(user, "court_user", None)
    return court_user.court if court_user is not None else None


def mfa_required(user) -> bool:
    """True while the user holds a role that needs 2FA and has not set it up."""
    from allauth.mfa.utils import is_mfa_enabled

    if not user.is_authenticated:
        return False
    if not global_roles(user) & set(settings.ODR_MFA_REQUIRED_ROLES):
        return False
    if user.is_demo and settings.ODR_DEMO_MODE:
        return False
    return not is_mfa_enabled(user)


@rule("mediator.work")
def _mediator_work(user, _obj) -> bool:
    return is_mediator(user) and not mfa_required(user)


@rule("court.work")
def _court_work(user, _obj) -> bool:
    return court_of(user) is not None and not mfa_required(user)


@rule("admin.work")
def _admin_work(user, _obj) -> bool:
    return user.is_staff and not mfa_required(user)
