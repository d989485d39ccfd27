"""Demo data: a complete Kazakh–Russian draft of the mediation agreement in
the demo case, ready to freeze and sign (`make run` runs it after
seed_demo). Idempotent; demo mode only."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agreements.services import drafts
from odr.audit import SYSTEM
from odr.models import User
from sessions.management.commands.seed_demo import DEMO_DESCRIPTION
from sessions.models import Case, CaseStatus

FIELDS = {
    "kk.place": "Алматы қ., онлайн (ODR платформасы)",
    "ru.place": "г. Алматы, онлайн (платформа ODR)",
    "kk.subject": "Ортақ шатырды жөндеу және оның құнын көршілер арасында бөлу туралы дау.",
    "ru.subject": "Спор о ремонте общей крыши и распределении его стоимости между соседями.",
    "kk.terms": (
        "1) Тараптар шатырды жөндеу құнын (1 200 000 теңге) тең бөледі: әр тарап 600 000 теңге төлейді.\n"
        "2) Жөндеуді Дана Омарова таңдаған мердігер жүргізеді; Ерлан Сейтқали сметамен келіседі."
    ),
    "ru.terms": (
        "1) Стороны делят стоимость ремонта крыши (1 200 000 тенге) поровну: каждая сторона платит 600 000 тенге.\n"
        "2) Ремонт выполняет подрядчик, выбранный Даной Омаровой; Ерлан Сейткали согласен со сметой."
    ),
    "kk.performance": "Әр тарап өз үлесін 2026 жылғы 15 желтоқсанға дейін мердігердің шотына банк аударымымен төлейді.",
    "ru.performance": "Каждая сторона перечисляет свою долю на счёт подрядчика банковским переводом до 15 декабря 2026 года.",
}


class Command(BaseCommand):
    help = "Write a complete draft mediation agreement in the demo case (idempotent; demo mode only)."

    def handle(self, *args, **options):
        if not (settings.DEBUG or settings.ODR_DEMO_MODE):
            raise CommandError("seed_demo_agreement runs only with DEBUG on or ODR_DEMO_MODE=true.")
        case = Case.objects.filter(description=DEMO_DESCRIPTION).first()
        if case is None:
            raise CommandError("Run seed_demo first.")
        if case.drafts.exists() or case.status != CaseStatus.ACTIVE:
            self.stdout.write(f"The demo case {case.reference} already has its draft agreement.")
            return
        mediator = User.objects.get(email="mediator@demo.kz")
        fields = {**drafts.draft_defaults(layout="kk-ru"), **FIELDS}
        draft = drafts.draft_save(case=case, user=mediator, fields=fields, layout="kk-ru", origin=SYSTEM)
        self.stdout.write(f"Demo case {case.reference}: draft mediation agreement, version {draft.version}.")
