"""Shared fixtures: factories for users and roles, the job queue, emails."""

import copy
import itertools
import uuid

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command

from odr.audit import Origin
from odr.models import (
    Court,
    CourtUser,
    Language,
    MediatorKind,
    MediatorProfile,
    Region,
    Specialisation,
    User,
)

pytest_plugins = ["tests.case_fixtures"]

# The room consumers reach the database from a pool of threads; with persistent
# connections (production's DB_CONN_MAX_AGE) those threads' connections would
# outlive the tests and keep the test database from being dropped. The Daphne
# processes the system tests start keep the production setting.
django_settings.DATABASES["default"]["CONN_MAX_AGE"] = 0

PASSWORD = "a-Strong-test-pass-2026"
ORIGIN = Origin(ip="203.0.113.7", user_agent="pytest")
_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's deliberate slowness is for attackers, not for the test suite."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english_interface(settings):
    """Tests read the English interface (the site's default is Russian) unless
    they are about a language: then they set the user's language or the
    cookie themselves (tests/odr/test_translations.py)."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    """Each test gets its own cache namespace (rate-limit counters, used TOTP
    codes) without flushing a Redis that other processes share."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def _private_files(settings, tmp_path, monkeypatch):
    """Room documents of each test go to a temporary folder, not the project's.
    (A FileField resolves its storage once, at import: point it there too.)"""
    from django.core.files.storage import FileSystemStorage

    from sessions.models import RoomDocument

    location = str(tmp_path / "private")
    storages = copy.deepcopy(settings.STORAGES)
    storages["private"]["OPTIONS"]["location"] = location
    settings.STORAGES = storages
    monkeypatch.setattr(RoomDocument._meta.get_field("file"), "storage", FileSystemStorage(location=location))


@pytest.fixture
def origin():
    return ORIGIN


@pytest.fixture
def user_factory(db):
    def make(email=None, *, display_name=None, language=Language.ENGLISH, verified=True, **extra):
        n = next(_counter)
        email = email or f"user{n}@example.kz"
        user = User.objects.create_user(
            email=email, password=PASSWORD, display_name=display_name or f"User {n}",
            preferred_language=language, **extra,
        )
        EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
        return user

    return make


def enable_totp(user):
    """Give the user an authenticator app (allauth's TOTP), as set-up would."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(user, generate_totp_secret())
    return user


@pytest.fixture
def mediator_factory(user_factory):
    """Mediators, court users and admins must have 2FA; they get it unless
    `mfa=False` asks for one who has not set it up yet."""

    def make(email=None, *, kind=MediatorKind.PROFESSIONAL, languages=("ru", "kk"),
             specialisations=(Specialisation.CIVIL, Specialisation.FAMILY), active=True, mfa=True, **extra):
        user = user_factory(email, **extra)
        if mfa:
            enable_totp(user)
        MediatorProfile.objects.create(
            user=user, kind=kind, registry_number=f"REG-{user.pk:05d}", languages=list(languages),
            specialisations=list(specialisations), region=Region.ALMATY_CITY, is_active=active,
        )
        return User.objects.get(pk=user.pk)

    return make


@pytest.fixture
def court(db):
    return Court.objects.create(code="astana-civil", name="Astana City Civil Court", region=Region.ASTANA)


@pytest.fixture
def court_user(user_factory, court):
    user = enable_totp(user_factory("clerk@court.kz"))
    CourtUser.objects.create(user=user, court=court)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def admin_user(user_factory):
    return enable_totp(user_factory("admin@example.kz", is_staff=True, is_superuser=True))


@pytest.fixture
def party_a(user_factory):
    return user_factory("claimant@example.kz", display_name="Aliya Claimant")


@pytest.fixture
def party_b(user_factory):
    return user_factory("respondent@example.kz", display_name="Bolat Respondent", language=Language.KAZAKH)


@pytest.fixture
def mediator(mediator_factory):
    return mediator_factory("mediator@example.kz", display_name="Marat Mediator")


@pytest.fixture
def run_jobs(db, settings, monkeypatch):
    """Run every job that is due on the durable queue, in this process, with
    the real worker. The worker closes stale connections between jobs, which
    would close the test's own transaction, so that housekeeping is off here."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setattr(
        "django_tasks_db.management.commands.db_worker.close_old_connections", lambda: None
    )

    def run():
        call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)

    return run


@pytest.fixture
def outbox():
    mail.outbox = []
    return mail.outbox
