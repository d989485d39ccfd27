"""What errors may show and log.

- `SecretsFilter` (DEFAULT_EXCEPTION_REPORTER_FILTER) cleanses Django's
  error reports — the DEBUG error page of `make run` included — of every
  setting and frame variable that is or holds a secret. Django's own filter
  is off under DEBUG and cleanses frame variables only where a function was
  decorated; this one always cleanses, by name and by value.
- `RefusalsWithoutTraceback` (a logging filter) keeps one line for a 4xx
  answer: a refused request (403, 404, 400) is the system working, and its
  traceback would bury the real errors in the log.
"""

import logging
import re

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

# Names of settings, variables and headers whose values are secrets.
HIDDEN = re.compile(
    r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|CREDENTIAL|PRIVATE|SESSION|CSRF|DATABASE_URL|REDIS_URL|EMAIL_URL",
    flags=re.IGNORECASE,
)
# Settings whose values are looked for inside every other value shown.
SECRET_SETTINGS = re.compile(
    r"SECRET|PASSWORD|PASSPHRASE|MASTER_KEY|TOKEN|DATABASE_URL|REDIS_URL|EMAIL_URL", flags=re.IGNORECASE
)
_SHORTEST_SECRET = 6


class SecretsFilter(SafeExceptionReporterFilter):
    hidden_settings = HIDDEN

    def is_active(self, request):
        return True  # under DEBUG too: `make run` shows its error pages to whoever triggers them

    def secret_values(self) -> list[str]:
        """The values of every secret setting, to be found inside other values
        (read each time: the filter instance lives as long as the process)."""
        values = []

        def collect(name, value):
            if isinstance(value, dict):
                for key, item in value.items():
                    collect(f"{name}.{key}", item)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    collect(name, item)
            elif isinstance(value, str) and len(value) >= _SHORTEST_SECRET and SECRET_SETTINGS.search(name):
                values.append(value)

        for name in dir(settings):
            if name.isupper():
                collect(name, getattr(settings, name, None))
        for database in settings.DATABASES.values():
            if database.get("PASSWORD"):
                values.append(str(database["PASSWORD"]))
        return sorted(set(values), key=len, reverse=True)

    def _holds_secret(self, value) -> bool:
        try:
            text = value if isinstance(value, str) else repr(value)
        except Exception:  # noqa: BLE001 — an object whose repr fails shows nothing
            return True
        return any(secret in text for secret in self.secret_values())

    def get_traceback_frame_variables(self, request, tb_frame):
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if value != self.cleansed_substitute and (HIDDEN.search(name) or self._holds_secret(value)):
                value = self.cleansed_substitute
            cleansed.append((name, value))
        return cleansed


class RefusalsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
