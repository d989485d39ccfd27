"""The fixed wording of the mediation agreement in Kazakh, Russian and
English: headings, the clauses the Law "On Mediation" (No. 401-IV of
28 January 2011) requires, and the default wording the mediator starts from.

These are the document's own words, in the document's language, whatever
language the person looking at the page uses; so they live here rather than
in the interface's translation catalogue."""

# The sections the mediator writes, in document order; every one is required
# before freezing. "subject", "terms", "performance" and "non_performance" are
# what the Law requires the agreement to state besides the parties and the
# mediator; "place" goes with the date.
FIELDS = ("place", "subject", "terms", "performance", "non_performance")
FIELD_MAX_CHARS = 20_000

LABELS: dict[str, dict[str, str]] = {
    "kk": {
        "title": "Медиация тәртібімен дауды реттеу туралы келісім",
        "case": "Іс",
        "page": "Бет",
        "place": "Жасалған орны",
        "date": "Құжаттың күні",
        "preamble": (
            "Осы келісім «Медиация туралы» 2011 жылғы 28 қаңтардағы № 401-IV Қазақстан Республикасының "
            "Заңына сәйкес ODR платформасында онлайн өткізілген медиацияның нәтижесінде жасалды."
        ),
        "parties": "Тараптар",
        "mediator": "Медиатор",
        "claimant": "Талапкер",
        "respondent": "Жауапкер",
        "subject": "Даудың мәні",
        "terms": "Тараптар келіскен шарттар",
        "performance": "Орындау мерзімдері мен тәртібі",
        "non_performance": "Орындамаудың салдары",
        "final": (
            "Келісім тараптар үшін міндетті; тараптар оны келісімде көзделген тәртіппен және мерзімде "
            "өз еркімен орындайды. Келісім барлық тараптар мен медиатор қол қойған сәттен бастап күшіне "
            "енеді. Тараптар медиацияның құпиялылығын сақтауға міндеттенеді."
        ),
        "signatures": "Тараптар мен медиатордың қолдары",
        "signatures_note": (
            "Төмендегі әрбір қол электрондық. Қол қою уақыты мен тәсілі әр қол қоюшының өрісінде көрсетілген; "
            "платформаның мөрі бүкіл файлды қамтиды."
        ),
        "verification_code": "Тексеру коды",
        "verify_at": "Құжаттың түпнұсқалығын мына жерде тексеріңіз:",
        "signed": "Қол қойылды",
        "email_code": "электрондық поштаға жіберілген бір реттік код",
        "totp": "аутентификатор қосымшасының бір реттік коды (TOTP)",
        "certificate": "қол қоюшының өз ЭЦҚ сертификаты",
        "sealed_by": "ODR платформасының мөрі",
    },
    "ru": {
        "title": "Соглашение об урегулировании спора в порядке медиации",
        "case": "Дело",
        "page": "Стр.",
        "place": "Место заключения",
        "date": "Дата документа",
        "preamble": (
            "Настоящее соглашение заключено в соответствии с Законом Республики Казахстан от 28 января "
            "2011 года № 401-IV «О медиации» по результатам медиации, проведённой онлайн на платформе ODR."
        ),
        "parties": "Стороны",
        "mediator": "Медиатор",
        "claimant": "Истец",
        "respondent": "Ответчик",
        "subject": "Предмет спора",
        "terms": "Условия, согласованные сторонами",
        "performance": "Сроки и порядок исполнения",
        "non_performance": "Последствия неисполнения",
        "final": (
            "Соглашение обязательно для сторон, которые исполняют его добровольно в порядке и в сроки, "
            "предусмотренные соглашением. Соглашение вступает в силу с момента его подписания всеми "
            "сторонами и медиатором. Стороны обязуются соблюдать конфиденциальность медиации."
        ),
        "signatures": "Подписи сторон и медиатора",
        "signatures_note": (
            "Каждая подпись ниже — электронная. Время и способ подписания указаны в поле каждого "
            "подписанта; печать платформы охватывает весь файл."
        ),
        "verification_code": "Код проверки",
        "verify_at": "Проверить подлинность документа:",
        "signed": "Подписано",
        "email_code": "одноразовый код, отправленный по электронной почте",
        "totp": "одноразовый код приложения-аутентификатора (TOTP)",
        "certificate": "собственный сертификат ЭЦП подписанта",
        "sealed_by": "Печать платформы ODR",
    },
    "en": {
        "title": "Mediation agreement (settlement of the dispute by mediation)",
        "case": "Case",
        "page": "Page",
        "place": "Place",
        "date": "Date of the document",
        "preamble": (
            "This agreement is concluded under the Law of the Republic of Kazakhstan “On Mediation” "
            "No. 401-IV of 28 January 2011, as the outcome of a mediation held online on the ODR platform."
        ),
        "parties": "The parties",
        "mediator": "Mediator",
        "claimant": "Claimant",
        "respondent": "Respondent",
        "subject": "Subject of the dispute",
        "terms": "Terms agreed by the parties",
        "performance": "Deadlines and manner of performance",
        "non_performance": "Consequences of non-performance",
        "final": (
            "The agreement binds the parties, who perform it voluntarily in the manner and within the time "
            "it provides. It enters into force when every party and the mediator have signed it. The parties "
            "keep the mediation confidential."
        ),
        "signatures": "Signatures of the parties and the mediator",
        "signatures_note": (
            "Every signature below is electronic. The time and method of each appear in the signer's box; "
            "the platform's seal covers the whole file."
        ),
        "verification_code": "Verification code",
        "verify_at": "Verify this document at:",
        "signed": "Signed",
        "email_code": "one-time code sent by email",
        "totp": "one-time code from an authenticator app (TOTP)",
        "certificate": "the signer's own digital signature certificate",
        "sealed_by": "Seal of the ODR platform",
    },
}

# What a new draft starts from; the mediator edits every word of it.
DEFAULTS: dict[str, dict[str, str]] = {
    "kk": {
        "place": "Онлайн, ODR платформасы",
        "non_performance": (
            "Тараптардың бірі келісімді өз еркімен орындамаған жағдайда, екінші тарап оны мәжбүрлеп "
            "орындату үшін Қазақстан Республикасының заңнамасында көзделген тәртіппен сотқа жүгінуге құқылы."
        ),
    },
    "ru": {
        "place": "Онлайн, платформа ODR",
        "non_performance": (
            "В случае неисполнения соглашения одной из сторон добровольно другая сторона вправе обратиться "
            "в суд за его принудительным исполнением в порядке, предусмотренном законодательством "
            "Республики Казахстан."
        ),
    },
    "en": {
        "place": "Online, ODR platform",
        "non_performance": (
            "If a party does not perform this agreement voluntarily, the other party may apply to the court "
            "for its enforcement in the manner provided by the legislation of the Republic of Kazakhstan."
        ),
    },
}

