"""Accounts end to end through the test client: sign-up with email
verification, login and logout, password reset, login throttling, the 2FA
requirement for privileged roles, audit rows and the user's language."""

import io
import re
import time

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    SECRET_SESSION_KEY,
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import NON_FIELD_ERRORS
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from odr.models import AuditAction, AuditEvent, Language, OutboundEmail, User
from tests.conftest import PASSWORD

NEW_PASSWORD = "another-Strong-pass-2027"
DASHBOARD = "/dashboard/"
LINK = re.compile(r"https?://[^/\s]+(/accounts/[^\s\"'<>]+)")


def _login(client, email, password=PASSWORD, **extra):
    return client.post(reverse("account_login"), {"login": email, "password": password}, **extra)


def _logged_in_user_id(client):
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def _links_in(message):
    return LINK.findall(message.body)


def _current_totp_code(secret):
    """The code of the current time step; near the end of a step, wait for the
    next one, so that the code is still valid when the server checks it."""
    period = mfa_settings.TOTP_PERIOD
    if period - time.time() % period < 2:
        time.sleep(period - time.time() % period + 0.05)
    counter = int(time.time()) // period
    return format_hotp_value(hotp_value(secret, counter))


# --- Sign-up and email verification ------------------------------------------------


def _sign_up(client, email="newcomer@example.kz", **overrides):
    data = {
        "email": email,
        "password1": PASSWORD,
        "password2": PASSWORD,
        "display_name": "Dana Newcomer",
        "preferred_language": Language.KAZAKH,
        **overrides,
    }
    return client.post(reverse("account_signup"), data)


def test_when_a_visitor_signs_up_then_user_is_created_with_name_and_language_but_not_logged_in(
    client, run_jobs, outbox
):
    response = _sign_up(client)

    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="newcomer@example.kz")
    assert user.display_name == "Dana Newcomer"
    assert user.preferred_language == Language.KAZAKH
    assert user.check_password(PASSWORD)
    assert not user.emailaddress_set.get().verified
    assert _logged_in_user_id(client) is None
    assert client.get(DASHBOARD).status_code == 302  # to the login page


def test_when_a_visitor_signs_up_then_verification_email_waits_for_the_job_queue(client, run_jobs, outbox):
    _sign_up(client)

    assert outbox == []
    (job,) = DBTaskResult.objects.all()
    assert job.task_path == "odr.tasks.send_email"
    # The job names a sealed email of the outbox and carries none of it.
    (email,) = OutboundEmail.objects.all()
    assert job.args_kwargs == {"args": [], "kwargs": {"email_id": str(email.public_id)}}
    assert b"newcomer" not in bytes(email.sealed)
    run_jobs()

    assert len(outbox) == 1
    message = outbox[0]
    assert message.to == ["newcomer@example.kz"]
    confirm_prefix = reverse("account_confirm_email", args=["KEY"]).removesuffix("KEY/")
    assert [link for link in _links_in(message) if link.startswith(confirm_prefix)]
    assert not OutboundEmail.objects.exists()  # sent, then forgotten
    assert DBTaskResult.objects.get().return_value is None


def test_when_the_confirmation_link_is_posted_then_email_is_verified_and_user_logged_in(
    client, run_jobs, outbox
):
    _sign_up(client)
    run_jobs()
    confirm_prefix = reverse("account_confirm_email", args=["KEY"]).removesuffix("KEY/")
    (link,) = [link for link in _links_in(outbox[0]) if link.startswith(confirm_prefix)]

    assert client.get(link).status_code == 200  # a page with a button, no change on GET
    assert not User.objects.get(email="newcomer@example.kz").emailaddress_set.get().verified

    response = client.post(link)

    user = User.objects.get(email="newcomer@example.kz")
    assert response.status_code == 302
    assert user.emailaddress_set.get().verified
    assert _logged_in_user_id(client) == user.pk
    assert client.get(DASHBOARD).status_code == 200


def test_when_signup_passwords_differ_then_no_user_is_created(client, run_jobs, outbox):
    response = _sign_up(client, password2=PASSWORD + "x")

    assert response.status_code == 200
    assert not User.objects.filter(email="newcomer@example.kz").exists()
    run_jobs()
    assert outbox == []


def test_when_a_visitor_signs_up_with_any_name_then_the_verification_email_does_not_carry_it(
    client, run_jobs, outbox
):
    """The name is typed by a stranger and the address may be someone else's:
    the email must not be a way to send one's own words from our domain."""
    _sign_up(client, display_name="WIN 1,000,000 tenge at http://spam.example.kz now")
    run_jobs()

    (message,) = outbox
    assert "spam.example" not in message.body and "WIN" not in message.body
    assert "spam.example" not in message.subject
    assert "Someone gave this email address" in message.body


# --- The profile ------------------------------------------------------------------------------


def test_when_a_user_saves_a_new_name_phone_and_language_then_they_are_stored_and_audited(client, party_a):
    client.force_login(party_a)

    response = client.post(
        reverse("profile"),
        {"display_name": "Aliya K. Claimant", "phone": "+7 701 123 4567", "preferred_language": Language.KAZAKH},
    )

    assert response.status_code == 302
    stored = User.objects.get(pk=party_a.pk)
    assert (stored.display_name, stored.phone, stored.preferred_language) == (
        "Aliya K. Claimant", "+7 701 123 4567", Language.KAZAKH,
    )
    event = AuditEvent.objects.filter(action=AuditAction.USER_PROFILE_CHANGED, actor=party_a).get()
    assert event.details == {"fields": ["display_name", "phone", "preferred_language"]}


def test_when_a_user_saves_the_profile_unchanged_then_nothing_is_written(client, party_a):
    client.force_login(party_a)

    client.post(reverse("profile"), {"display_name": party_a.display_name, "phone": "", "preferred_language": "en"})

    assert not AuditEvent.objects.filter(action=AuditAction.USER_PROFILE_CHANGED).exists()


# --- Login and logout -------------------------------------------------------------------------


def test_when_a_user_logs_in_with_email_and_password_then_session_is_authenticated(client, party_a):
    response = _login(client, party_a.email)

    assert response.status_code == 302
    assert _logged_in_user_id(client) == party_a.pk
    assert client.get(DASHBOARD).status_code == 200


def test_when_the_password_is_wrong_then_login_is_refused(client, party_a):
    response = _login(client, party_a.email, "not-the-password")

    assert response.status_code == 200
    assert _logged_in_user_id(client) is None
    assert not response.context["form"].has_error(NON_FIELD_ERRORS, code="too_many_login_attempts")


def test_when_a_user_logs_out_then_session_is_anonymous(client, party_a):
    _login(client, party_a.email)
    assert _logged_in_user_id(client) == party_a.pk

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert _logged_in_user_id(client) is None
    assert client.get(DASHBOARD).status_code == 302


# --- Password reset ------------------------------------------------------------------------------


def test_when_a_user_resets_the_password_then_the_new_password_logs_in(client, party_a, run_jobs, outbox):
    response = client.post(reverse("account_reset_password"), {"email": party_a.email})
    assert response.status_code == 302
    assert outbox == []

    run_jobs()

    assert len(outbox) == 1
    assert outbox[0].to == [party_a.email]
    reset_prefix = reverse("account_reset_password")
    (link,) = [link for link in _links_in(outbox[0]) if link.startswith(reset_prefix + "key/")]

    set_password_page = client.get(link, follow=True)
    assert set_password_page.status_code == 200
    form_url = set_password_page.redirect_chain[-1][0] if set_password_page.redirect_chain else link
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302

    party_a.refresh_from_db()
    assert party_a.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action=AuditAction.USER_PASSWORD_RESET, actor=party_a).exists()

    client.logout()
    _login(client, party_a.email, PASSWORD)
    assert _logged_in_user_id(client) is None
    _login(client, party_a.email, NEW_PASSWORD)
    assert _logged_in_user_id(client) == party_a.pk


# --- Login throttling ---------------------------------------------------------------------------------


ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.20"}


def test_when_an_account_has_five_failed_logins_from_one_address_then_that_address_is_refused_even_the_right_password(
    client, party_a, party_b
):
    for _attempt in range(5):
        _login(client, party_a.email, "wrong-password", **ATTACKER)
    assert _logged_in_user_id(client) is None

    response = _login(client, party_a.email, **ATTACKER)

    assert response.status_code == 200
    assert _logged_in_user_id(client) is None
    assert response.context["form"].has_error(NON_FIELD_ERRORS, code="too_many_login_attempts")

    # The limit is keyed on the account from that address: another account from the same address still logs in.
    _login(client, party_b.email, **ATTACKER)
    assert _logged_in_user_id(client) == party_b.pk


def test_when_a_stranger_fails_five_times_then_the_owner_still_signs_in_from_their_own_address(party_a):
    attacker, owner = Client(), Client()
    for _attempt in range(6):
        _login(attacker, party_a.email, "wrong-password", **ATTACKER)

    _login(owner, party_a.email, **OWNER)

    assert _logged_in_user_id(owner) == party_a.pk


def test_when_failures_pile_up_on_an_account_then_its_owner_is_emailed_once(party_a, run_jobs, outbox):
    for attempt in range(8):  # from several addresses, as a spread-out attack would
        _login(Client(), party_a.email, "wrong-password", REMOTE_ADDR=f"203.0.113.{10 + attempt % 3}")
    run_jobs()

    (message,) = outbox
    assert message.to == [party_a.email]
    assert message.subject == "Failed attempts to sign in to your account"
    assert "5 times" in message.body and "203.0.113." in message.body
    assert "wrong-password" not in message.body


def test_when_failures_pile_up_on_an_address_with_no_account_then_nobody_is_emailed(db, run_jobs, outbox):
    for _attempt in range(6):
        response = _login(Client(), "nobody-here@example.kz", "wrong-password", **ATTACKER)
        assert response.status_code == 200
    run_jobs()

    assert outbox == []


def test_when_an_account_reaches_the_hourly_ceiling_from_many_addresses_then_every_address_is_refused(
    party_a, settings
):
    settings.ODR_LOGIN_FAILURES_CEILING = 3
    for n in range(3):
        _login(Client(), party_a.email, "wrong-password", REMOTE_ADDR=f"203.0.113.{20 + n}")

    owner = Client()
    response = _login(owner, party_a.email, **OWNER)

    assert _logged_in_user_id(owner) is None
    assert response.context["form"].has_error(NON_FIELD_ERRORS, code="too_many_login_attempts")


def test_when_an_account_has_four_failed_logins_then_the_right_password_still_works(client, party_a):
    for _attempt in range(4):
        _login(client, party_a.email, "wrong-password")

    _login(client, party_a.email)

    assert _logged_in_user_id(client) == party_a.pk


# --- Two-factor authentication required of privileged roles ---------------------------------


def _without_2fa(user):
    """The shared fixtures may give privileged users an authenticator; these
    tests need one who has not set 2FA up yet."""
    Authenticator.objects.filter(user=user).delete()
    return user


@pytest.fixture
def mediator_user(mediator_factory):
    return _without_2fa(mediator_factory("mediator@example.kz"))


@pytest.fixture
def court_user_without_2fa(court_user):
    return _without_2fa(court_user)


@pytest.fixture
def admin_user_without_2fa(admin_user):
    return _without_2fa(admin_user)


def _demo_mediator(mediator_factory):
    return _without_2fa(mediator_factory("demo-mediator@example.kz", is_demo=True))


@pytest.mark.parametrize("who", ["mediator_user", "court_user_without_2fa", "admin_user_without_2fa"])
def test_when_a_privileged_user_without_2fa_opens_dashboard_then_redirected_to_totp_activation(
    client, request, who
):
    user = request.getfixturevalue(who)
    _login(client, user.email)
    assert _logged_in_user_id(client) == user.pk

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")


def test_when_a_plain_party_opens_dashboard_then_no_2fa_is_asked(client, party_a):
    _login(client, party_a.email)

    response = client.get(DASHBOARD)

    assert response.status_code == 200


def test_when_demo_mode_is_on_then_a_demo_mediator_is_exempt_from_2fa(client, settings, mediator_factory):
    settings.ODR_DEMO_MODE = True
    user = _demo_mediator(mediator_factory)
    _login(client, user.email)

    assert client.get(DASHBOARD).status_code == 200


def test_when_demo_mode_is_off_then_a_demo_mediator_must_set_up_2fa(client, settings, mediator_factory):
    settings.ODR_DEMO_MODE = False
    user = _demo_mediator(mediator_factory)
    _login(client, user.email)

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")


def test_when_demo_mode_is_on_then_a_non_demo_mediator_still_must_set_up_2fa(client, settings, mediator_user):
    settings.ODR_DEMO_MODE = True
    _login(client, mediator_user.email)

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")


def _open_totp_activation(client):
    """allauth asks for the password again before an authenticator is added."""
    activate = reverse("mfa_activate_totp")
    response = client.get(activate)
    if response.status_code == 302 and response.url.startswith(reverse("account_reauthenticate")):
        response = client.post(response.url, {"password": PASSWORD})
        assert response.status_code == 302
        assert response.url == activate
        response = client.get(activate)
    assert response.status_code == 200
    return client.session[SECRET_SESSION_KEY]


def test_when_a_mediator_activates_totp_through_the_form_then_dashboard_opens(
    client, mediator_user, django_capture_on_commit_callbacks
):
    _login(client, mediator_user.email)
    response = client.get(DASHBOARD)
    assert response.url == reverse("mfa_activate_totp")
    secret = _open_totp_activation(client)

    # allauth sends authenticator_added (and so the audit row) on commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_activate_totp"), {"code": _current_totp_code(secret)})

    assert response.status_code == 302
    assert Authenticator.objects.filter(user=mediator_user, type=Authenticator.Type.TOTP).exists()
    assert AuditEvent.objects.filter(action=AuditAction.USER_MFA_ACTIVATED, actor=mediator_user).exists()
    assert client.get(DASHBOARD).status_code == 200


def test_when_a_wrong_totp_code_is_given_then_2fa_is_not_activated(client, mediator_user):
    _login(client, mediator_user.email)
    secret = _open_totp_activation(client)
    wrong = f"{(int(_current_totp_code(secret)) + 500000) % 1000000:06d}"

    response = client.post(reverse("mfa_activate_totp"), {"code": wrong})

    assert response.status_code == 200
    assert not Authenticator.objects.filter(user=mediator_user).exists()
    assert client.get(DASHBOARD).status_code == 302


def test_when_a_mediator_has_a_totp_authenticator_then_dashboard_opens(client, mediator_user):
    _login(client, mediator_user.email)
    assert client.get(DASHBOARD).status_code == 302

    TOTP.activate(mediator_user, generate_totp_secret())

    assert client.get(DASHBOARD).status_code == 200


def test_when_a_user_with_totp_logs_in_then_the_code_is_asked_before_the_session_is_authenticated(
    client, mediator_user
):
    secret = generate_totp_secret()
    TOTP.activate(mediator_user, secret)

    response = _login(client, mediator_user.email)

    assert response.status_code == 302
    assert response.url == reverse("mfa_authenticate")
    assert _logged_in_user_id(client) is None
    client.post(reverse("mfa_authenticate"), {"code": _current_totp_code(secret)})
    assert _logged_in_user_id(client) == mediator_user.pk
    assert client.get(DASHBOARD).status_code == 200


def test_when_totp_is_activated_then_its_secret_is_stored_sealed_and_login_still_works(
    client, mediator_user, settings
):
    from django.core.management import call_command

    from odr import crypto

    secret = generate_totp_secret()
    TOTP.activate(mediator_user, secret)

    stored = Authenticator.objects.get(user=mediator_user, type=Authenticator.Type.TOTP).data["secret"]
    assert stored.startswith("odr1:") and secret not in stored
    # The master key rotates: the platform key is rewrapped, the secret still opens.
    old = settings.ODR_MASTER_KEY
    settings.ODR_MASTER_KEY = crypto.generate_master_key()
    settings.ODR_PREVIOUS_MASTER_KEYS = [old]
    call_command("rotate_master_key", stdout=io.StringIO())
    settings.ODR_PREVIOUS_MASTER_KEYS = []
    _login(client, mediator_user.email)
    client.post(reverse("mfa_authenticate"), {"code": _current_totp_code(secret)})
    assert _logged_in_user_id(client) == mediator_user.pk


# --- Audit -------------------------------------------------------------------------------------------------------


def test_when_a_user_logs_in_then_an_audit_row_records_it_with_the_ip(client, party_a):
    _login(client, party_a.email, REMOTE_ADDR="198.51.100.23")

    event = AuditEvent.objects.get(action=AuditAction.USER_LOGGED_IN)
    assert event.actor_id == party_a.pk
    assert event.ip == "198.51.100.23"


def test_when_a_login_fails_then_an_audit_row_records_the_attempt_and_ip(client, party_a):
    _login(client, party_a.email, "wrong-password", REMOTE_ADDR="198.51.100.24")

    event = AuditEvent.objects.get(action=AuditAction.USER_LOGIN_FAILED)
    assert event.actor_id is None
    assert event.ip == "198.51.100.24"
    assert event.details == {"email": party_a.email}
    assert not AuditEvent.objects.filter(action=AuditAction.USER_LOGGED_IN).exists()


def test_when_a_user_logs_out_then_an_audit_row_records_it_with_the_ip(client, party_a):
    _login(client, party_a.email)

    client.post(reverse("account_logout"), REMOTE_ADDR="198.51.100.25")

    event = AuditEvent.objects.get(action=AuditAction.USER_LOGGED_OUT)
    assert event.actor_id == party_a.pk
    assert event.ip == "198.51.100.25"


# --- Language ----------------------------------------------------------------------------------------------------


def _html_lang(response):
    match = re.search(r'<html lang="([^"]*)"', response.content.decode())
    assert match, "no <html lang> in the page"
    return match.group(1)


def test_when_a_user_prefers_kazakh_then_pages_are_in_kazakh(client, user_factory):
    user = user_factory(language=Language.KAZAKH)
    _login(client, user.email)

    response = client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert _html_lang(response) == "kk"


def test_when_a_user_switches_to_english_then_the_preference_is_saved_and_pages_follow(
    client, user_factory
):
    user = user_factory(language=Language.KAZAKH)
    _login(client, user.email)

    response = client.post(reverse("language_switch"), {"language": "en", "next": DASHBOARD})

    assert response.status_code == 302
    assert response.url == DASHBOARD
    user.refresh_from_db()
    assert user.preferred_language == Language.ENGLISH
    assert _html_lang(client.get(DASHBOARD)) == "en"


def test_when_an_unknown_language_is_chosen_then_an_error_is_shown_and_nothing_changes(
    client, user_factory
):
    user = user_factory(language=Language.KAZAKH)
    _login(client, user.email)
    client.get(DASHBOARD)  # shows, and so consumes, the signed-in message

    response = client.post(
        reverse("language_switch"), {"language": "xx", "next": DASHBOARD}, follow=True
    )

    user.refresh_from_db()
    assert user.preferred_language == Language.KAZAKH
    messages = list(response.context["messages"])
    assert [m.level_tag for m in messages] == ["error"]
    assert _html_lang(response) == "kk"


def test_when_the_next_url_is_off_site_then_the_language_switch_redirects_home(client, user_factory):
    user = user_factory(language=Language.KAZAKH)
    _login(client, user.email)

    response = client.post(
        reverse("language_switch"), {"language": "ru", "next": "https://evil.example/"}
    )

    assert response.status_code == 302
    assert response.url == "/"
