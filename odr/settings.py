"""One settings module, configured from the environment (12-factor).

Embedded default (no variables set): SQLite in WAL mode, the in-memory channel
layer, the console email backend, DEBUG on. Production sets DATABASE_URL,
REDIS_URL, SECRET_KEY, ALLOWED_HOSTS, ODR_MASTER_KEY and email settings, with
DEBUG off; `manage.py check --deploy` then reports nothing.
"""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.str("ODR_ENV_FILE", default=""):
    environ.Env.read_env(env.str("ODR_ENV_FILE"))

DEBUG = env.bool("DEBUG", default=True)

_DEV_SECRET = "dev-insecure-secret-key-only-for-local-runs-never-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_tasks",
    "django_tasks_db",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "odr.apps.OdrConfig",
    "sessions.apps.MediationConfig",
    "agreements.apps.AgreementsConfig",
]

MIDDLEWARE = [
    "odr.middleware.ApiErrorsAsJsonMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "odr.middleware.NeverCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "odr.middleware.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "odr.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "odr.middleware.MfaEnforcementMiddleware",
]

ROOT_URLCONF = "odr.urls"
ASGI_APPLICATION = "odr.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "odr.context_processors.site",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE makes concurrent
    # writers queue on the busy timeout instead of failing "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that the Daphne processes the system and browser
    # tests start can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
else:
    # Persistent connections (with health checks): a WebSocket frame's database
    # work no longer starts with a new connection (docs/performance.md).
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer, cache -----------------------------------------------------
# One Redis at REDIS_URL; or, for failover, the master that Redis Sentinel names
# (REDIS_SENTINELS, docs/operations.md "Redis Sentinel"), and REDIS_URL is unused.
REDIS_URL = env.str("REDIS_URL", default="")
from odr.redis_sentinel import sentinel_addresses  # noqa: E402

REDIS_SENTINELS = sentinel_addresses(env.list("REDIS_SENTINELS", default=[]))
# channels_redis waits on Redis with a 5 s blocking pop; redis-py's own default
# read timeout is also 5 s, which would end every quiet socket with a
# TimeoutError. Read longer than the pop.
_CHANNEL_LAYER_SOCKET = {"socket_timeout": 30, "socket_connect_timeout": 5}
if REDIS_SENTINELS:
    _REDIS_MASTER = env.str("REDIS_SENTINEL_MASTER", default="odr")
    _REDIS_SERVER = {"db": env.int("REDIS_DB", default=0), "password": env.str("REDIS_PASSWORD", default=None)}
    _SENTINEL = {
        "sentinels": REDIS_SENTINELS,
        # Sentinels answer at once; a dead one is skipped after the timeout.
        "sentinel_kwargs": {
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
            "password": env.str("REDIS_SENTINEL_PASSWORD", default=None),
        },
    }
    _CHANNEL_LAYER_HOST = {"master_name": _REDIS_MASTER, **_SENTINEL, **_REDIS_SERVER, **_CHANNEL_LAYER_SOCKET}
    # Cache commands never block: a master that vanished mid-failover fails
    # the request after 5 s instead of holding it for the kernel's TCP timeout.
    _CACHE_SERVER = {
        "LOCATION": _REDIS_MASTER,
        "OPTIONS": {
            "pool_class": "odr.redis_sentinel.SentinelMasterPool",
            **_SENTINEL,
            **_REDIS_SERVER,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
        },
    }
elif REDIS_URL:
    _CHANNEL_LAYER_HOST = {"address": REDIS_URL, **_CHANNEL_LAYER_SOCKET}
    # As with Sentinel: a vanished Redis fails a cache command after 5 s.
    _CACHE_SERVER = {"LOCATION": REDIS_URL, "OPTIONS": {"socket_timeout": 5, "socket_connect_timeout": 5}}
if REDIS_SENTINELS or REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [_CHANNEL_LAYER_HOST],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="odr"),
                "capacity": 1000,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            **_CACHE_SERVER,
            "KEY_PREFIX": env.str("CACHE_PREFIX", default="odr"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Durable job queue (django-tasks with its database backend) ---------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Accounts (django-allauth) ------------------------------------------------
AUTH_USER_MODEL = "odr.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_REAUTHENTICATION_TIMEOUT = env.int("ACCOUNT_REAUTHENTICATION_TIMEOUT", default=300)
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "login": "30/m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user",
    "confirm_email": "1/3m/key",
}
# "key" is an account from one address (odr.adapters.AccountAdapter): a
# stranger's failures do not lock the owner out. Across all addresses an
# account takes at most this many failures an hour, and its owner is emailed
# once this many have piled up within the hour.
ODR_LOGIN_FAILURES_CEILING = env.int("ODR_LOGIN_FAILURES_CEILING", default=100)
ODR_LOGIN_FAILURES_NOTICE = env.int("ODR_LOGIN_FAILURES_NOTICE", default=5)
ACCOUNT_ADAPTER = "odr.adapters.AccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "odr.forms.SignupForm"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[ODR] "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "odr.adapters.MFAAdapter"
MFA_TOTP_ISSUER = "ODR Mediation"
# Sessions end after this much inactivity: every request renews the cookie,
# so an idle browser is signed out and its room sockets closed (4401).
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=60 * 60)
SESSION_SAVE_EVERY_REQUEST = True

# Two-factor authentication is required of these global roles before they reach
# their work pages (odr.middleware.MfaEnforcementMiddleware).
ODR_MFA_REQUIRED_ROLES = ("mediator", "court_user", "admin")
# seed_demo runs only in demo mode; demo accounts are then exempt from the
# 2FA requirement so that a newcomer can log straight in.
ODR_DEMO_MODE = env.bool("ODR_DEMO_MODE", default=DEBUG)

# --- Email ----------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ODR Mediation <no-reply@odr.kz>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -----------------------------------------------------------
LANGUAGE_CODE = "ru"
LANGUAGES = [("kk", _("Kazakh")), ("ru", _("Russian")), ("en", _("English"))]
# Our catalogues (makemessages writes the first); then Kazakh for the
# words of django-allauth and Django's forms, which ship none.
LOCALE_PATHS = [BASE_DIR / "odr" / "locale", BASE_DIR / "odr" / "vendor_locale"]
# Dates as Kazakhstan writes them in Kazakh (Django has no Kazakh formats).
FORMAT_MODULE_PATH = ["odr.formats"]
TIME_ZONE = "Asia/Almaty"
USE_I18N = True
USE_TZ = True

# --- Static and media files ---------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / ".static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Room documents: outside the web root, served only through the policy.
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.path("ODR_PRIVATE_ROOT", default=BASE_DIR / ".media" / "private")},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Case files live outside the web root and are served only by views that ask
# the policy module; there is deliberately no MEDIA_URL route.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".media")

# --- Encryption at rest (odr/crypto.py, docs/confidentiality.md) ----------------------
# The master key wraps every case's data key. Production sets ODR_MASTER_KEY
# (URL-safe base64 of 32 bytes: `manage.py rotate_master_key --generate`).
# A development run without it uses ODR_MASTER_KEY_FILE, created on first use
# (`.odr-master-key`, ignored by git); with DEBUG off a missing key is an error.
ODR_MASTER_KEY_FILE = env.path("ODR_MASTER_KEY_FILE", default=BASE_DIR / ".odr-master-key")
ODR_MASTER_KEY = env.str("ODR_MASTER_KEY", default="")
if not ODR_MASTER_KEY:
    if not DEBUG:
        raise environ.ImproperlyConfigured("ODR_MASTER_KEY must be set when DEBUG is off.")
    from odr.devkey import development_master_key  # noqa: E402

    ODR_MASTER_KEY = development_master_key(Path(ODR_MASTER_KEY_FILE))
# Retired master keys still accepted for unwrapping until `rotate_master_key`
# has rewrapped every data key under the current one.
ODR_PREVIOUS_MASTER_KEYS = env.list("ODR_PREVIOUS_MASTER_KEYS", default=[])
from odr.devkey import MasterKeyError, parse_master_key  # noqa: E402

try:
    for _key in (ODR_MASTER_KEY, *ODR_PREVIOUS_MASTER_KEYS):
        parse_master_key(_key)
except MasterKeyError as _error:
    raise environ.ImproperlyConfigured(f"ODR_MASTER_KEY / ODR_PREVIOUS_MASTER_KEYS: {_error}") from None

# --- Agreements: the platform's seal and the trusted roots (docs/agreements.md) ----------
# The sealer is pluggable: a local PKCS#12 now, an HSM or a national signature
# service later (a class with `seal(pdf: bytes, *, reason: str) -> bytes`).
ODR_SEAL_BACKEND = env.str("ODR_SEAL_BACKEND", default="agreements.sealing.Pkcs12Sealer")
# `manage.py make_dev_ca` writes a development CA and seal into ODR_PKI_DIR.
ODR_PKI_DIR = env.path("ODR_PKI_DIR", default=BASE_DIR / ".pki")
ODR_SEAL_PKCS12 = env.str("ODR_SEAL_PKCS12", default=str(Path(ODR_PKI_DIR) / "seal.p12"))
ODR_SEAL_PASSPHRASE = env.str("ODR_SEAL_PASSPHRASE", default="dev-seal-passphrase" if DEBUG else "")
# PEM files of the roots a seal or a signer's certificate must chain to.
ODR_TRUST_ROOTS = env.list("ODR_TRUST_ROOTS", default=[str(Path(ODR_PKI_DIR) / "ca.pem")])
# Signing with one's own certificate (PKCS#12): the roots a signer's
# certificate must chain to (e.g. Kazakhstan's national CA; add them to
# ODR_TRUST_ROOTS too, so that the finished PDF verifies), and certificate
# revocation lists (DER or PEM files, refreshed by the operator) checked
# offline. With ODR_SIGNER_ALLOW_FETCHING, CRLs named in certificates are
# fetched too.
ODR_SIGNER_TRUST_ROOTS = env.list("ODR_SIGNER_TRUST_ROOTS", default=ODR_TRUST_ROOTS)
ODR_SIGNER_CRLS = env.list("ODR_SIGNER_CRLS", default=[])
ODR_SIGNER_ALLOW_FETCHING = env.bool("ODR_SIGNER_ALLOW_FETCHING", default=False)
# A sealing attempt that has not finished after this many seconds (a crashed
# worker, an unreachable signing service) is tried again from the queue.
ODR_SEAL_RETRY_SECONDS = env.int("ODR_SEAL_RETRY_SECONDS", default=300)
# A one-time signing code sent by email is good for this many minutes.
ODR_SIGNING_CODE_MINUTES = env.int("ODR_SIGNING_CODE_MINUTES", default=10)
# The largest PDF /verify/ accepts, and the largest certificate file.
ODR_VERIFY_MAX_BYTES = env.int("ODR_VERIFY_MAX_BYTES", default=20 * 1024 * 1024)
# Each PDF is checked in a sandbox process (agreements/sandbox.py): CPU
# seconds and memory (MiB, on top of the checker's own) it may use, and the
# wall-clock seconds after which it is killed. A sealed agreement takes
# 15-100 ms; past a limit the answer is "could not be checked".
ODR_VERIFY_CPU_SECONDS = env.int("ODR_VERIFY_CPU_SECONDS", default=3)
ODR_VERIFY_MEMORY_MB = env.int("ODR_VERIFY_MEMORY_MB", default=256)
ODR_VERIFY_TIMEOUT_SECONDS = env.float("ODR_VERIFY_TIMEOUT_SECONDS", default=15.0)
# Uploads checked at once per site process; another waits this many seconds
# for a turn, then is told to try again shortly (503).
ODR_VERIFY_CONCURRENCY = env.int("ODR_VERIFY_CONCURRENCY", default=2)
ODR_VERIFY_QUEUE_SECONDS = env.float("ODR_VERIFY_QUEUE_SECONDS", default=5.0)
# Per client address, across processes (the cache): files checked and
# verification codes looked up on /verify/, as count/period (s, m, h, d).
ODR_VERIFY_UPLOAD_RATE = env.str("ODR_VERIFY_UPLOAD_RATE", default="10/m")
ODR_VERIFY_CODE_RATE = env.str("ODR_VERIFY_CODE_RATE", default="30/m")

# --- The court API (docs/court-api.md) ------------------------------------------------
# Courts' systems authenticate with a bearer token per court (created and
# revoked by administrators); there are no sessions, so no CSRF.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["agreements.api.auth.CourtTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["agreements.api.auth.IsCourt"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["agreements.api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "agreements.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# The largest JSON body the court API reads (a status change is a few hundred bytes).
ODR_API_MAX_BODY_BYTES = env.int("ODR_API_MAX_BODY_BYTES", default=64 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "ODR Mediation court API",
    "DESCRIPTION": "Filings of sealed mediation agreements, for the courts they are filed with.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "FilingStatusEnum": "agreements.models.filing.FilingStatus",
        "CourtAnswerEnum": "agreements.api.serializers.COURT_ANSWER_CHOICES",
    },
}

# --- Filing with courts (docs/torelik.md) ---------------------------------------------
# How filings reach the court: "portal" (the built-in court portal) or an
# external judicial system's adapter, by name → class.
ODR_FILING_CHANNEL = env.str("ODR_FILING_CHANNEL", default="portal")
ODR_FILING_CHANNELS = {
    "portal": "agreements.channels.PortalChannel",
    "torelik": "agreements.torelik.TorelikChannel",
}
# The external judicial system (docs/torelik.md): its base URL, the shared
# secret that signs requests both ways, the timeout of one delivery, and how
# far a signed timestamp may be from our clock.
ODR_TORELIK_URL = env.str("ODR_TORELIK_URL", default="")
ODR_TORELIK_SECRET = env.str("ODR_TORELIK_SECRET", default="")
ODR_TORELIK_TIMEOUT = env.float("ODR_TORELIK_TIMEOUT", default=10.0)
ODR_TORELIK_MAX_SKEW = env.int("ODR_TORELIK_MAX_SKEW", default=300)
# Delivery retries: exponential backoff with jitter from BACKOFF up to
# BACKOFF_MAX seconds; after MAX_ATTEMPTS the filing fails (dead letter) and
# administrators are emailed.
ODR_DELIVERY_MAX_ATTEMPTS = env.int("ODR_DELIVERY_MAX_ATTEMPTS", default=8)
ODR_DELIVERY_BACKOFF_SECONDS = env.int("ODR_DELIVERY_BACKOFF_SECONDS", default=30)
ODR_DELIVERY_BACKOFF_MAX_SECONDS = env.int("ODR_DELIVERY_BACKOFF_MAX_SECONDS", default=3600)

# --- Retention and confidentiality ----------------------------------------------------
# A closed case's content (chat, caucus talk, documents, drafts) is destroyed
# this many days after closing, unless under legal hold.
ODR_RETENTION_DAYS = env.int("ODR_RETENTION_DAYS", default=30)
# How long an administrator's break-glass access to a case's content lasts.
ODR_BREAK_GLASS_MINUTES = env.int("ODR_BREAK_GLASS_MINUTES", default=60)

# --- The procedure --------------------------------------------------------------
ODR_INVITATION_DAYS = env.int("ODR_INVITATION_DAYS", default=10)
ODR_TERM_DAYS = env.int("ODR_TERM_DAYS", default=30)

# --- Rooms and real-time chat (docs/protocol.md) ----------------------------------
ODR_MESSAGE_MAX_CHARS = env.int("ODR_MESSAGE_MAX_CHARS", default=5000)
# Largest WebSocket text frame the room consumer reads; larger ones get `error`
# `too_large`. Below Daphne's own ceiling (1 MiB: close 1009), which odr/server.py checks.
ODR_WS_MAX_FRAME_BYTES = env.int("ODR_WS_MAX_FRAME_BYTES", default=64 * 1024)
# Messages per user per room: ODR_CHAT_RATE_COUNT within ODR_CHAT_RATE_SECONDS.
ODR_CHAT_RATE_COUNT = env.int("ODR_CHAT_RATE_COUNT", default=10)
ODR_CHAT_RATE_SECONDS = env.int("ODR_CHAT_RATE_SECONDS", default=10)
# Frames of any kind per connection in the same window, before `rate_limited`.
ODR_WS_FRAME_RATE_COUNT = env.int("ODR_WS_FRAME_RATE_COUNT", default=60)
# A client refused this many times in one window is closed with 4429.
ODR_WS_FLOOD_CLOSE_AFTER = env.int("ODR_WS_FLOOD_CLOSE_AFTER", default=5)
# Messages on the room page at once, and per "older messages" page.
ODR_HISTORY_PAGE = env.int("ODR_HISTORY_PAGE", default=50)
# A connection not heard from (client ping every 25 s) for this long is offline.
ODR_PRESENCE_TIMEOUT_SECONDS = env.int("ODR_PRESENCE_TIMEOUT_SECONDS", default=70)
ODR_UPLOAD_MAX_BYTES = env.int("ODR_UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- The server process (odr/server.py, docs/operations.md) ------------------------
# Seconds from SIGTERM (or Ctrl-C) until a Daphne process is gone: it drains
# its sockets (close 4503) within this, and a watchdog ends it when the time is
# up, whatever a thread is stuck on. Keep it well under systemd's
# TimeoutStopSec (20 s in deploy/systemd/odr-daphne@.service), after which
# systemd kills without a word.
ODR_SHUTDOWN_GRACE_SECONDS = env.int("ODR_SHUTDOWN_GRACE_SECONDS", default=10)

# --- Security ------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# odr.middleware.CsrfViewMiddleware is Django's, subclassed to accept the
# same-origin posts of a no-referrer site; Django's check looks for its own
# dotted path only. (The settings it would check are asserted in
# tests/odr/test_settings_deploy.py.)
SILENCED_SYSTEM_CHECKS = ["security.W003"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        # 'self' covers the same-origin ws:/wss: in CSP 3 browsers; the site's
        # own WebSocket origin is named too for older ones (Safari < 15.4).
        "connect-src": ["'self'", SITE_URL.replace("https://", "wss://", 1).replace("http://", "ws://", 1)],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Error reports (and make run's DEBUG error pages) show no secret: settings
# and frame variables are cleansed by name and by value (odr/reporting.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "odr.reporting.SecretsFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"refusals_without_traceback": {"()": "odr.reporting.RefusalsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["refusals_without_traceback"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own handlers for its loggers go (under DEBUG they printed
        # every record a second time, traceback included): everything reaches
        # the root's console handler, which keeps one line for a refusal.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A refusal's record loses its traceback where it is made, whoever handles it.
        "django.request": {"filters": ["refusals_without_traceback"]},
        # WeasyPrint logs every layout step at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Serve static files straight from the apps in development (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
