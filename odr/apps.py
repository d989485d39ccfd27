from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OdrConfig(AppConfig):
    name = "odr"
    verbose_name = _("Platform")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from odr import signals  # noqa: F401
