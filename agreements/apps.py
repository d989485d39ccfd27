from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AgreementsConfig(AppConfig):
    """Mediation (settlement) agreements: drafting, signing, sealing, filing.

    The agreement to mediate lives in `sessions`, because it gates the case's
    state machine and `sessions` may not import from here.
    """

    name = "agreements"
    verbose_name = _("Agreements")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from agreements import policies  # noqa: F401  (registers the rules)
        from agreements.services.drafts import drafts_destroy
        from sessions.services.retention import case_content_destroying

        case_content_destroying.connect(drafts_destroy, dispatch_uid="agreements.drafts_destroy")

        from agreements.services.signing import agreements_end_with_case
        from sessions.services.procedure import case_closing

        case_closing.connect(agreements_end_with_case, dispatch_uid="agreements.end_with_case")
