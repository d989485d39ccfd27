"""Shared fixtures: factories for users and roles, the job queue, emails."""

import itertools

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.management import call_command

from odr.audit import Origin
from odr.models import Court, CourtUser, Language, MediatorKind, MediatorProfile, Region, Specialisation, User

PASSWORD = "a-Strong-test-pass-2026"
ORIGIN = Origin(ip="203.0.113.7", user_agent="pytest")
_counter = itertools.count(1)


@pytest.fixture
def origin():
    return ORIGIN


@pytest.fixture
def user_factory(db):
    def make(email=None, *, display_name=None, language=Language.RUSSIAN, verified=True, **extra):
        n = next(_counter)
        email = email or f"user{n}@example.kz"
        user = User.objects.create_user(
            email=email, password=PASSWORD, display_name=display_name or f"User {n}",
            preferred_language=language, **extra,
        )
        EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
        return user

    return make


@pytest.fixture
def mediator_factory(user_factory):
    def make(email=None, *, kind=MediatorKind.PROFESSIONAL, languages=("ru", "kk"),
             specialisations=(Specialisation.CIVIL, Specialisation.FAMILY), active=True, **extra):
        user = user_factory(email, **extra)
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
    user = user_factory("clerk@court.kz")
    CourtUser.objects.create(user=user, court=court)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def admin_user(user_factory):
    return user_factory("admin@example.kz", is_staff=True, is_superuser=True)


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
def run_jobs(db, settings):
    """Run every job that is due on the durable queue, in this process."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    def run():
        call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)

    return run


@pytest.fixture
def outbox():
    mail.outbox = []
    return mail.outbox
