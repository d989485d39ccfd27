from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MediationConfig(AppConfig):
    # `django.contrib.sessions` already owns the label "sessions".
    name = "sessions"
    label = "mediation"
    verbose_name = _("Mediation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from sessions import policies, signals  # noqa: F401  (registers rules and receivers)
