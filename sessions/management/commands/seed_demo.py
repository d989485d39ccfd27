"""Demo data for a newcomer, idempotent: `python manage.py seed_demo [--json]`."""

import json

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse

from odr.audit import SYSTEM
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
from sessions import agreement_to_mediate
from sessions.models import PARTY_ROLES, Case, CaseStatus, ParticipantStatus, Role
from sessions.services import confidentiality, intake, invitations, mediators, procedure, rooms

PASSWORD = "demo-pass-2026"
DEMO_DESCRIPTION = (
    "Demo case: a dispute between neighbours over repairs to a shared roof and how to share the cost."
)
ACCOUNTS = [
    # email, display name, language, role
    ("admin@demo.kz", "Demo Admin", Language.ENGLISH, "admin"),
    ("mediator@demo.kz", "Aigerim Sadykova", Language.RUSSIAN, "professional mediator"),
    ("mediator2@demo.kz", "Nurlan Abenov", Language.KAZAKH, "public mediator"),
    ("party1@demo.kz", "Dana Omarova", Language.RUSSIAN, "party"),
    ("party2@demo.kz", "Yerlan Seitkali", Language.KAZAKH, "party"),
    ("court@demo.kz", "Court Clerk", Language.RUSSIAN, "court user"),
]


class Command(BaseCommand):
    help = "Create the demo accounts and an active demo case (idempotent; demo mode only)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the accounts and the case as JSON.")
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Seed even though DEBUG and ODR_DEMO_MODE are off (never on a real deployment).",
        )

    def handle(self, *args, **options):
        if not (settings.DEBUG or settings.ODR_DEMO_MODE or options["allow_without_debug"]):
            raise CommandError("seed_demo runs only with DEBUG on, ODR_DEMO_MODE=true, or --allow-without-debug.")
        with transaction.atomic():
            users = self._accounts()
            case = self._case(users)
            self._session(case, users["mediator@demo.kz"])
        if options["json"]:
            self.stdout.write(json.dumps(self._describe(users, case), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(self.style.SUCCESS("Demo data ready."))
            for email, name, _lang, role in ACCOUNTS:
                self.stdout.write(f"  {email:<20} {PASSWORD}   {role}")
            self.stdout.write(f"  demo case {case.reference}: {settings.SITE_URL}{reverse('mediation:case_detail', args=[case.public_id])}")

    def _accounts(self) -> dict[str, User]:
        users = {}
        for email, name, language, role in ACCOUNTS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email=email, password=PASSWORD, display_name=name, preferred_language=language,
                    is_demo=True, is_staff=(role == "admin"), is_superuser=(role == "admin"),
                )
            EmailAddress.objects.update_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
            users[email] = user
        court, _ = Court.objects.get_or_create(
            code="almaty-specialised-inter-district-civil",
            defaults={"name": "Specialised Inter-District Civil Court of Almaty", "region": Region.ALMATY_CITY},
        )
        CourtUser.objects.get_or_create(user=users["court@demo.kz"], defaults={"court": court})
        MediatorProfile.objects.get_or_create(
            user=users["mediator@demo.kz"],
            defaults={
                "kind": MediatorKind.PROFESSIONAL, "registry_number": "PM-DEMO-0001",
                "languages": [Language.RUSSIAN, Language.KAZAKH, Language.ENGLISH],
                "specialisations": [Specialisation.CIVIL, Specialisation.FAMILY, Specialisation.COMMERCIAL],
                "region": Region.ALMATY_CITY,
            },
        )
        MediatorProfile.objects.get_or_create(
            user=users["mediator2@demo.kz"],
            defaults={
                "kind": MediatorKind.PUBLIC, "registry_number": "OM-DEMO-0002",
                "languages": [Language.KAZAKH, Language.RUSSIAN],
                "specialisations": [Specialisation.LABOUR, Specialisation.INTER_ETHNIC, Specialisation.OTHER],
                "region": Region.TURKISTAN,
            },
        )
        return users

    def _case(self, users) -> Case:
        """The demo case goes through the real procedure, step by step."""
        party1, party2 = users["party1@demo.kz"], users["party2@demo.kz"]
        mediator = users["mediator@demo.kz"]
        case = Case.objects.filter(created_by=party1, description=DEMO_DESCRIPTION).first()
        if case is not None:
            return case
        case = intake.case_file(
            claimant=party1,
            application=intake.Application(
                category=Specialisation.CIVIL, description=DEMO_DESCRIPTION, language=Language.RUSSIAN,
                other_parties=[intake.OtherParty(name=party2.display_name, email=party2.email)],
                court=Court.objects.get(code="almaty-specialised-inter-district-civil"),
                court_case_number="2-1234/2026",
                mediator=mediator,
            ),
            origin=SYSTEM,
        )
        invitations.invitation_accept(invitation=case.invitations.get(email=party2.email), user=party2, origin=SYSTEM)
        mediators.mediator_answer(case=case, user=mediator, accept=True, reason="", origin=SYSTEM)
        case.refresh_from_db()
        text = agreement_to_mediate.render(case=case, language=case.language)
        for user in (party1, party2, mediator):
            procedure.atm_accept(case=case, user=user, text_sha256=agreement_to_mediate.digest(text), origin=SYSTEM)
        case.refresh_from_db()
        assert case.status == CaseStatus.ACTIVE
        return case

    def _session(self, case: Case, mediator: User) -> None:
        """A session in progress: everyone admitted to the joint room, a caucus
        open with each party. Left as it is when one is already running."""
        if case.status != CaseStatus.ACTIVE or rooms.open_session(case) is not None:
            return
        joint = rooms.room_joint(case)
        # The mediator accepted the confidentiality undertaking to open the
        # session; the parties accept it when they first enter a room.
        text = confidentiality.undertaking_render(case=case, language=mediator.preferred_language)
        confidentiality.undertaking_accept(
            case=case, user=mediator, text_sha256=confidentiality.undertaking_digest(text),
            language=mediator.preferred_language, origin=SYSTEM,
        )
        rooms.session_start(room=joint, user=mediator)
        for member in rooms.room_members(joint):
            if member.role != Role.MEDIATOR:
                rooms.lobby_admit(room=joint, user=mediator, participant_id=member.public_id)
        for party in case.participants.filter(role__in=PARTY_ROLES, status=ParticipantStatus.ACTIVE):
            rooms.caucus_open(room=joint, user=mediator, party_id=party.public_id)

    def _describe(self, users, case) -> dict:
        return {
            "password": PASSWORD,
            "accounts": [
                {"email": email, "display_name": users[email].display_name, "role": role, "id": str(users[email].public_id)}
                for email, _name, _lang, role in ACCOUNTS
            ],
            "case": {
                "id": str(case.public_id),
                "reference": case.reference,
                "status": case.status,
                "url": settings.SITE_URL + reverse("mediation:case_detail", args=[case.public_id]),
                "participants": [
                    {"email": p.user.email, "role": p.role, "id": str(p.public_id)}
                    for p in case.participants.select_related("user").filter(role__in=[*Role.values])
                ],
                "session_open": rooms.open_session(case) is not None,
                "rooms": [
                    {
                        "id": str(room.public_id),
                        "kind": room.kind,
                        "open": room.is_open,
                        "url": settings.SITE_URL + reverse("mediation:room", args=[room.public_id]),
                        "ws_path": f"/ws/rooms/{room.public_id}/",
                        "party": str(room.party.public_id) if room.party else None,
                        "members": [
                            {"id": str(m.public_id), "email": m.user.email, "role": m.role}
                            for m in rooms.room_members(room)
                        ],
                    }
                    for room in case.rooms.select_related("party").order_by("-kind", "created_at")
                ],
            },
        }
