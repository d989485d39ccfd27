"""Authentication events go to the audit log."""

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver

from odr.audit import SYSTEM, Origin, audit_record
from odr.models import AuditAction


def _origin(request) -> Origin:
    return Origin.from_request(request) if request is not None else SYSTEM


@receiver(auth_signals.user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit_record(action=AuditAction.USER_LOGGED_IN, actor=user, origin=_origin(request), obj=user)


@receiver(auth_signals.user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=AuditAction.USER_LOGGED_OUT, actor=user, origin=_origin(request), obj=user)


@receiver(auth_signals.user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    attempted = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit_record(
        action=AuditAction.USER_LOGIN_FAILED,
        actor=None,
        origin=_origin(request),
        details={"email": attempted},
    )


@receiver(account_signals.user_signed_up)
def _signed_up(sender, request, user, **kwargs):
    audit_record(action=AuditAction.USER_SIGNED_UP, actor=user, origin=_origin(request), obj=user)


@receiver(account_signals.password_changed)
def _password_changed(sender, request, user, **kwargs):
    audit_record(action=AuditAction.USER_PASSWORD_CHANGED, actor=user, origin=_origin(request), obj=user)


@receiver(account_signals.password_reset)
def _password_reset(sender, request, user, **kwargs):
    audit_record(action=AuditAction.USER_PASSWORD_RESET, actor=user, origin=_origin(request), obj=user)


@receiver(mfa_signals.authenticator_added)
def _mfa_added(sender, request, user, authenticator, **kwargs):
    audit_record(
        action=AuditAction.USER_MFA_ACTIVATED,
        actor=user,
        origin=_origin(request),
        obj=user,
        details={"type": authenticator.type},
    )


@receiver(mfa_signals.authenticator_removed)
def _mfa_removed(sender, request, user, authenticator, **kwargs):
    audit_record(
        action=AuditAction.USER_MFA_DEACTIVATED,
        actor=user,
        origin=_origin(request),
        obj=user,
        details={"type": authenticator.type},
    )
