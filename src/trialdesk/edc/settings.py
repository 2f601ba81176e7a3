"""Settings for the trial desk.

Everything a deployment changes comes from the environment:

- ``TRIALDESK_DEBUG=1`` for development (never in production);
- ``TRIALDESK_SECRET_KEY`` (required unless DEBUG);
- ``DATABASE_URL`` (``postgresql://user:pass@host:5432/name``); SQLite in ``TRIALDESK_DATA_DIR`` otherwise;
- ``TRIALDESK_ALLOWED_HOSTS`` (comma-separated), ``TRIALDESK_SECURE_COOKIES`` (1 behind HTTPS, the default unless DEBUG);
- ``TRIALDESK_HTTPS`` (the default unless DEBUG or TRIALDESK_SECURE_COOKIES=0): redirect to HTTPS, HSTS for a
  year, trust the proxy's ``X-Forwarded-Proto``; turn it (and secure cookies) off only for a server that
  listens on loopback alone (tests, benchmarks);
- ``TRIALDESK_CSRF_TRUSTED_ORIGINS`` (comma-separated ``https://host`` origins, when a proxy changes the host);
- ``TRIALDESK_PROTOCOL`` the protocol the desk serves (an id, file or folder); it may be left unset only when exactly one
  protocol is installed or the installation declares a default (``protocols/installation.yaml``), else the desk
  refuses to start when several are installed and none is named. The desk's clock
  (``TIME_ZONE``) is that protocol's site zone (``locations[].time_zone``); a protocol without one is refused;
- ``TRIALDESK_MEDDRA`` the MedAscii folder of a licensed MedDRA distribution (``llt.asc``, ``mdhier.asc``): the SDTM
  export then codes AEDECOD to the preferred term; ``TRIALDESK_DATE_SHIFT_KEY`` the de-identified export's date-shift
  key (else one is made and kept in the database on the first such export);
- ``TRIALDESK_SESSION_MINUTES`` idle timeout (15 by default);
- ``TRIALDESK_DESK_URL`` where the desk is served, for the links in e-mail alerts (SAE, self-referral, query);
- ``TRIALDESK_REFERRAL_POSTS_PER_HOUR`` how many public self-referral POSTs one address may send an hour (30).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

HERE = Path(__file__).resolve().parent


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def _served_protocol() -> tuple[str, str]:
    """The protocol the desk serves (chosen as commands choose: :func:`trialdesk.protocol.loader.choose`) and its site's time zone."""
    from trialdesk.protocol.loader import ProtocolError, choose, load

    try:
        ref = str(choose(None))
        zone = load(ref).site_time_zone()
    except ProtocolError as exc:
        raise ImproperlyConfigured(f"the trial desk cannot tell which protocol to serve: {exc}") from None
    if not zone:
        raise ImproperlyConfigured(f"protocol {ref} names no site time zone, and the desk keeps the site's clock; set"
                                   " locations[].time_zone in its protocol.yaml to the site's IANA zone name")
    return ref, zone


DEBUG = _flag("TRIALDESK_DEBUG", False)
SECRET_KEY = os.environ.get("TRIALDESK_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("TRIALDESK_SECRET_KEY is not set; set it to a long random string (or TRIALDESK_DEBUG=1 for development)")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("TRIALDESK_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
DATA_DIR = Path(os.environ.get("TRIALDESK_DATA_DIR", Path.cwd() / "trialdesk-data"))
TRIALDESK_PROTOCOL, _SITE_ZONE = _served_protocol()
TRIALDESK_MEDDRA = os.environ.get("TRIALDESK_MEDDRA", "").strip()

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "trialdesk.edc.accounts",
    "trialdesk.edc.audit",
    "trialdesk.edc.signatures",
    "trialdesk.edc.screening",
    "trialdesk.edc.participants",
    "trialdesk.edc.dosing",
    "trialdesk.edc.visits",
    "trialdesk.edc.quality",
    "trialdesk.edc.labs",
    "trialdesk.edc.adverse_events",
    "trialdesk.edc.safety",
    "trialdesk.edc.exports",
    "trialdesk.edc.referrals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "trialdesk.edc.accounts.middleware.ForcePasswordChange",
]

ROOT_URLCONF = "trialdesk.edc.urls"
WSGI_APPLICATION = "trialdesk.edc.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [HERE / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "trialdesk.edc.web.context",
    ]},
}]

_database_url = os.environ.get("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "trialdesk.sqlite3",
                             "OPTIONS": {"transaction_mode": "IMMEDIATE"}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "trialdesk.edc.accounts.backends.StudySiteBackend"]

# Lockout: five failed logins lock the account (by username) for 30 minutes, or until an administrator resets it.
AXES_FAILURE_LIMIT = 5
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_COOLOFF_TIME = dt.timedelta(minutes=30)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "edc/locked.html"
AXES_VERBOSE = False

# Session: an idle timeout (each request renews it) and a cookie that dies with the browser.
SESSION_COOKIE_AGE = int(os.environ.get("TRIALDESK_SESSION_MINUTES", "15")) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
_secure = _flag("TRIALDESK_SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = _secure
CSRF_COOKIE_SECURE = _secure
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if _flag("TRIALDESK_HTTPS", _secure):  # a deployment that turned secure cookies off said it serves plain HTTP
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Behind a TLS-terminating proxy: its address, and the headers it sets that the server may believe. waitress clears
# forwarded headers from anyone else, so a request that did not come through the proxy is plain HTTP (redirected)
# and its client address is its own; through the proxy, the scheme and the client address are the proxy's word.
TRIALDESK_TRUSTED_PROXY = os.environ.get("TRIALDESK_TRUSTED_PROXY", "").strip()
TRIALDESK_TRUSTED_PROXY_HEADERS = tuple(h.strip().lower() for h in os.environ.get(
    "TRIALDESK_TRUSTED_PROXY_HEADERS", "x-forwarded-proto x-forwarded-for").replace(",", " ").split() if h.strip())
# The cache: shared by every worker process when TRIALDESK_CACHE_URL names a Redis (e.g. redis://127.0.0.1:6379/1), so the
# public referral form's rate limit counts each client once across them; the demo keeps the process's own memory.
if os.environ.get("TRIALDESK_CACHE_URL", "").strip():
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["TRIALDESK_CACHE_URL"].strip(),
                          "KEY_PREFIX": "trialdesk"}}
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("TRIALDESK_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
# Content Security Policy (django-csp): the pages use no script at all and only the app's own style
# sheet, so everything but the app's own files is refused; a page with an inline style (the DSMB
# report, which is also saved as a standalone file) allows that style by its hash (web.allow_inline_styles).
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'"], "img-src": ["'self'", "data:"],
    "object-src": ["'none'"], "base-uri": ["'none'"], "form-action": ["'self'"], "frame-ancestors": ["'none'"],
}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = _SITE_ZONE  # the site's clock, from the protocol; stored instants are UTC
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [HERE / "static"]
# SAE notices: printed to the console in development; set TRIALDESK_EMAIL_BACKEND (and Django's EMAIL_HOST...) to send
EMAIL_BACKEND = os.environ.get("TRIALDESK_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend" if DEBUG
                               else "django.core.mail.backends.smtp.EmailBackend")
# where the trial desk is served (e.g. https://desk.example.org), for the links in e-mail alerts; relative links if unset
TRIALDESK_DESK_URL = os.environ.get("TRIALDESK_DESK_URL", "")
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"axes": {"handlers": ["console"], "level": "WARNING"}}}
# The lockout is per account (five failures lock the user id, wherever they come from), as the
# study's access policy asks; axes warns that IP is not part of the key, which is intended.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
# The public self-referral form: POSTs allowed per address per hour (counted in Django's cache,
# per process with the default local-memory cache; give several processes a shared CACHES).
TRIALDESK_REFERRAL_POSTS_PER_HOUR = int(os.environ.get("TRIALDESK_REFERRAL_POSTS_PER_HOUR", "30"))
