"""The production configuration, read from the environment, passes Django's
deployment checks; each run is a fresh process, since settings are read once."""

import base64
import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ONE_YEAR = 60 * 60 * 24 * 365

# Variables odr/settings.py reads that could change the outcome; the parent's
# values must not leak into the child.
_SETTINGS_VARS = {
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SITE_URL", "DATABASE_URL",
    "REDIS_URL", "ODR_ENV_FILE", "ODR_MASTER_KEY", "ODR_DEMO_MODE", "EMAIL_URL", "SESSION_COOKIE_AGE",
    "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def _random_secret(length=64):
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _environment(**overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SETTINGS_VARS and not key.startswith("SECURE_")
    }
    for key in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env["DJANGO_SETTINGS_MODULE"] = "odr.settings"
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def _production(**overrides):
    production = {
        "DEBUG": "false",
        "SECRET_KEY": _random_secret(),
        "ALLOWED_HOSTS": "odr.example.kz",
        "ODR_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    return _environment(**{**production, **overrides})


def _run(args, env):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _check_deploy(env):
    return _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


def test_when_production_environment_is_set_then_check_deploy_reports_no_issues():
    result = _check_deploy(_production())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_when_the_secret_key_is_weak_then_check_deploy_fails():
    result = _check_deploy(_production(SECRET_KEY="short-and-weak"))

    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_when_debug_is_off_and_secret_key_is_missing_then_startup_fails():
    result = _check_deploy(_production(SECRET_KEY=None))

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


_PRINT_SECURITY = (
    "import json\n"
    "from django.conf import settings as s\n"
    "print(json.dumps({name: getattr(s, name, None) for name in (\n"
    "    'DEBUG', 'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',\n"
    "    'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_PROXY_SSL_HEADER',\n"
    "    'SESSION_COOKIE_HTTPONLY', 'X_FRAME_OPTIONS', 'ODR_DEMO_MODE')}))\n"
)


def _security_settings(env):
    result = _run(["-c", _PRINT_SECURITY], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_when_debug_is_off_then_https_cookies_and_hsts_are_enforced():
    values = _security_settings(_production())

    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] >= ONE_YEAR
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    # Demo accounts' 2FA exemption follows DEBUG, so production has none.
    assert values["ODR_DEMO_MODE"] is False


def test_when_debug_is_on_then_local_http_still_works():
    values = _security_settings(_environment())

    assert values["DEBUG"] is True
    assert not values["SECURE_SSL_REDIRECT"]
    assert not values["SESSION_COOKIE_SECURE"]
    assert not values["SECURE_HSTS_SECONDS"]
