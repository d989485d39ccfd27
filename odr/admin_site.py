from allauth.account.decorators import secure_admin_login


def require_admin_mfa(login_view):
    """The admin signs in through allauth (throttling, 2FA), not its own form."""
    return secure_admin_login(login_view)
