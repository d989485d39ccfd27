"""Load fixtures for `make bench`: `python manage.py seed_load --rooms K --participants P --out FILE`.

K active cases, each with its joint room open and P people admitted to it:
the mediator (with 2FA, as the policy requires), the claimant, the
respondent, then the parties' representatives and, beyond that, observers.
Every case goes through the real services — application, invitations, the
mediator's acceptance, the agreement to mediate, the confidentiality
undertaking, the session start and admissions — so the rooms are exactly
what users would have. Everyone gets a login session, stored as a login
stores it, and the command writes the room ids and session keys to FILE
(JSON) for the load generator. One password hash is shared by all the load
accounts: hashing 2,000 passwords would take minutes and test nothing.

Only with DEBUG on, ODR_DEMO_MODE, or `--allow-without-debug` (never on a
production database: it creates thousands of accounts).
"""

import json
import time

from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from odr.audit import SYSTEM
from odr.models import Language, MediatorKind, MediatorProfile, Region, Specialisation, User
from sessions import agreement_to_mediate
from sessions.models import Role
from sessions.services import confidentiality, intake, invitations, mediators, procedure, rooms

PASSWORD = "load-pass-2026"
BACKEND = "django.contrib.auth.backends.ModelBackend"


class Command(BaseCommand):
    help = "Create K active cases with P admitted participants each, and their login sessions (for make bench)."

    def add_arguments(self, parser):
        parser.add_argument("--rooms", type=int, default=400)
        parser.add_argument("--participants", type=int, default=5, help="per room, mediator included (3 or more)")
        parser.add_argument("--out", required=True, help="JSON file for the load generator")
        parser.add_argument("--prefix", default="load", help="e-mail prefix of the accounts (load-r12-p3@...)")
        parser.add_argument("--allow-without-debug", action="store_true")

    def handle(self, *args, rooms: int, participants: int, out: str, prefix: str, allow_without_debug: bool, **kw):
        if not (settings.DEBUG or settings.ODR_DEMO_MODE or allow_without_debug):
            raise CommandError("seed_load creates thousands of accounts: only with DEBUG, ODR_DEMO_MODE or --allow-without-debug.")
        if participants < 3:
            raise CommandError("--participants must be 3 or more (a mediator and two parties).")
        started = time.monotonic()
        password_hash = make_password(PASSWORD)
        fixtures = {"password": PASSWORD, "participants": participants, "rooms": []}
        for index in range(rooms):
            fixtures["rooms"].append(self._room(index, participants, prefix, password_hash))
            if (index + 1) % 50 == 0:
                self.stderr.write(f"  {index + 1}/{rooms} rooms ({time.monotonic() - started:.0f} s)")
        with open(out, "w") as handle:
            json.dump(fixtures, handle)
        self.stdout.write(
            f"{rooms} rooms × {participants} participants seeded in {time.monotonic() - started:.1f} s → {out}"
        )

    def _user(self, email: str, name: str, password_hash: str) -> User:
        user = User.objects.create(
            email=email, display_name=name, preferred_language=Language.RUSSIAN, password=password_hash
        )
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    @transaction.atomic
    def _room(self, index: int, participants: int, prefix: str, password_hash: str) -> dict:
        def email(n: int) -> str:
            return f"{prefix}-r{index}-p{n}@load.test"

        mediator = self._user(email(0), f"Mediator {index}", password_hash)
        TOTP.activate(mediator, generate_totp_secret())
        MediatorProfile.objects.create(
            user=mediator, kind=MediatorKind.PROFESSIONAL, registry_number=f"LOAD-{mediator.pk:06d}",
            languages=["ru", "kk"], specialisations=[Specialisation.CIVIL], region=Region.ALMATY_CITY,
        )
        claimant = self._user(email(1), f"Claimant {index}", password_hash)
        respondent = self._user(email(2), f"Respondent {index}", password_hash)
        case = intake.case_file(
            claimant=claimant,
            application=intake.Application(
                category=Specialisation.CIVIL, description="Load test: a dispute over a shared fence.",
                language="ru", other_parties=[intake.OtherParty(name=respondent.display_name, email=respondent.email)],
                mediator=mediator,
            ),
            origin=SYSTEM,
        )
        invitations.invitation_accept(invitation=case.invitations.get(email=respondent.email), user=respondent, origin=SYSTEM)
        mediators.mediator_answer(case=case, user=mediator, accept=True, reason="", origin=SYSTEM)

        extra = []
        for n in range(3, participants):
            inviter, role = [(claimant, Role.REPRESENTATIVE), (respondent, Role.REPRESENTATIVE)][n - 3] if n < 5 else (
                mediator, Role.OBSERVER)
            person = self._user(email(n), f"{role.label} {index}-{n}", password_hash)
            invitation = invitations.invitation_create(
                case=case, actor=inviter, role=role, name=person.display_name, email=person.email, origin=SYSTEM
            )
            invitations.invitation_accept(invitation=invitation, user=person, origin=SYSTEM)
            extra.append(person)

        case.refresh_from_db()
        text = agreement_to_mediate.render(case=case, language=case.language)
        for user in (claimant, respondent, mediator):
            procedure.atm_accept(case=case, user=user, text_sha256=agreement_to_mediate.digest(text), origin=SYSTEM)
        case.refresh_from_db()
        undertaking = confidentiality.undertaking_render(case=case, language=case.language)
        people = [mediator, claimant, respondent, *extra]
        for user in people:
            confidentiality.undertaking_accept(
                case=case, user=user, text_sha256=confidentiality.undertaking_digest(undertaking),
                language=case.language, origin=SYSTEM,
            )

        joint = rooms.room_joint(case)
        rooms.session_start(room=joint, user=mediator)
        members = []
        for user in people:
            participant = case.participants.get(user=user)
            if user != mediator:
                rooms.lobby_admit(room=joint, user=mediator, participant_id=participant.public_id)
            members.append(
                {"email": user.email, "role": participant.role, "participant": str(participant.public_id),
                 "session": self._session(user)}
            )
        return {"room": str(joint.public_id), "case": case.reference, "members": members}

    @staticmethod
    def _session(user: User) -> str:
        """What `django.contrib.auth.login` stores, without a request."""
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = BACKEND
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        return session.session_key
