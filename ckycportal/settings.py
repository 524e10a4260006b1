"""Settings for CKYC Portal: one file, driven by the environment.

With nothing set it runs locally on SQLite with a broker-less Celery (kombu's filesystem transport);
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis. Every variable is explained in
``.env.example``.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value (see .env.example), "
            "or set DJANGO_DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-local-development-key-never-used-in-production"


def _local_secret(name: str, make: str) -> str:
    """A development-only secret kept under LOCAL_DIR, created on first use (never used without DEBUG)."""
    path = LOCAL_DIR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if make == "fernet":
            value = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        else:
            value = secrets.token_urlsafe(48)
        path.write_text(value, encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


LOCAL_DIR = Path(os.environ.get("PORTAL_LOCAL_DIR") or BASE_DIR / ".local")

# PII at rest: Fernet keys (comma-separated, newest first) that are NOT the SECRET_KEY, and a separate key
# for the keyed hash of the PAN used for exact search and duplicate detection.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
PII_HASH_KEY = os.environ.get("PII_HASH_KEY", "")
if not FIELD_ENCRYPTION_KEYS or not PII_HASH_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS and PII_HASH_KEY must be set: customer PII is encrypted at rest "
            "(see .env.example for how to generate them)."
        )
    FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [_local_secret("field-encryption-key", "fernet")]
    PII_HASH_KEY = PII_HASH_KEY or _local_secret("pii-hash-key", "token")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # django.contrib.admin, with a site that only admits staff verified by an OTP device
    "accounts.admin_config.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",  # Bootstrap's CSS and JS, served from the installed package (no CDN)
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "institutions",
    "records",
    "uploads",
    "registry",
    "reports",
    "bulkdata",
    "api",
    "ninja",  # the API docs page's template and its Swagger UI files (no CDN)
    "codelists",
    # The audit trail's append-only triggers (ckycportal/triggers.py), declared on the models, migrated.
    "pgtrigger",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before any process_view (CSRF's reads the body): refuses oversized bodies and signed-out uploads.
    "accounts.middleware.RequestBodyGuardMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.NoStoreForSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.AbsoluteSessionTimeoutMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.middleware.TwoFactorRequiredMiddleware",
    # Last, as django-axes asks: turns a locked-out log-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ckycportal.urls"
WSGI_APPLICATION = "ckycportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "institutions.context_processors.portal",
                "reports.context_processors.notifications",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{LOCAL_DIR / 'portal.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The local default is used by a web process and a worker at once: wait for locks, do not fail.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "institutions.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username+address before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "reports:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-in"
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Sessions and cookies: an internal tool holding customer PII.
SESSION_COOKIE_AGE = env_int("PORTAL_SESSION_IDLE_SECONDS", 15 * 60)
SESSION_SAVE_EVERY_REQUEST = True  # the age above is an idle timeout
# However active, a session ends this long after its log-in (accounts.middleware).
PORTAL_SESSION_MAX_SECONDS = env_int("PORTAL_SESSION_MAX_SECONDS", 10 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
# Lax, not Strict: a link to the portal from mail or a chat still opens it signed in; no cross-site POST
# carries either cookie.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Request size caps. Forms here are small: 2.5 MB of non-file data is far above any record form, and keeps
# a hostile POST from filling memory. Uploaded files above 10 MB are streamed to a temporary file instead
# of memory (any per-field size limit is the form's job).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 10_485_760
# No page takes more than one file (the import's), and no body is larger than that file (100 MB) plus its
# form: a longer body is refused (413) before it is read. Signed out, a body sent to a page that needs a
# log-in is refused unread, and a multipart body is held to DATA_UPLOAD_MAX_MEMORY_SIZE, so none is ever
# written to a temporary file (accounts.middleware.RequestBodyGuardMiddleware).
DATA_UPLOAD_MAX_NUMBER_FILES = 1
PORTAL_MAX_REQUEST_BYTES = 101 * 1024 * 1024

# Log-in throttling (django-axes): 5 failures for one username from one address lock that pair out for
# 15 minutes. Keyed on the pair so that one office behind one NAT address or proxy is not locked out by
# one person's typos. Guesses spread over many addresses meet a second limit: 20 failures of one username
# from anywhere within the cool-off lock that username (never an address) from everywhere
# (accounts.throttling.PortalAxesHandler; axes alone has one limit for all its parameter sets).
AXES_FAILURE_LIMIT = env_int("PORTAL_LOGIN_FAILURE_LIMIT", 5)
PORTAL_LOGIN_USERNAME_FAILURE_LIMIT = env_int("PORTAL_LOGIN_USERNAME_FAILURE_LIMIT", 20)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PORTAL_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "accounts.throttling.PortalAxesHandler"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
# The client's address: REMOTE_ADDR, or, behind N trusted reverse proxies, the address the outermost of
# them saw (X-Forwarded-For counted from the right, so a client cannot forge its way out of a lockout).
PORTAL_TRUSTED_PROXY_COUNT = env_int("PORTAL_TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "accounts.network.client_ip"

# Two-factor authentication (django-otp, TOTP): required for admins and checkers (accounts.middleware).
OTP_TOTP_ISSUER = os.environ.get("PORTAL_OTP_ISSUER", "CKYC Portal")
# An admin may delete a user's device (lost phone) but never read its secret: that would let them pass as
# a checker.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Content Security Policy (django-csp): no inline script or style anywhere; the QR code of the 2FA
# enrolment page is a data: image.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Served over HTTPS (behind a TLS-terminating proxy) unless told otherwise; DJANGO_HTTPS=false only for
# plain-HTTP test servers on localhost.
if env_bool("DJANGO_HTTPS", default=not DEBUG):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Celery: the broker is only a doorbell; PostgreSQL holds the truth (see uploads/services.py).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
else:
    # No broker server: kombu's filesystem transport, one folder for in and out (make run).
    _queue_dir = LOCAL_DIR / "broker" / "queue"
    _processed_dir = LOCAL_DIR / "broker" / "processed"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        # kombu's default is ./control, beside the code; keep its exchange tables with the queue.
        "control_folder": str(LOCAL_DIR / "broker" / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "ckycportal")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# Celery's Django fixup closes the database connection around every task unless this is set: a new
# PostgreSQL backend per task (a fork, and cold catalog caches) for each batch sent. Kept instead, and
# checked before each task like a request's (ckycportal.celery: CONN_MAX_AGE and the health check apply).
CELERY_DB_REUSE_MAX = 200
CELERY_BEAT_SCHEDULE_FILENAME = str(LOCAL_DIR / "celerybeat-schedule")
# Workers log through LOGGING below (and so through its PII-redacting filter), not a handler of their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# How often beat assembles approved records into batches and sweeps batches that are due.
UPLOAD_ASSEMBLE_EVERY_SECONDS = env_int("UPLOAD_ASSEMBLE_EVERY_SECONDS", 60)
# Batches one assembly run makes before it queues itself again behind their sends: a backlog starts sending
# at once instead of after it is all assembled.
UPLOAD_ASSEMBLE_BATCHES_PER_RUN = env_int("UPLOAD_ASSEMBLE_BATCHES_PER_RUN", 8)
# KwikID HTTP timeouts (connect, read); the task time limit above must stay longer than their sum.
KWIKID_CONNECT_TIMEOUT = float(os.environ.get("KWIKID_CONNECT_TIMEOUT", "5"))
KWIKID_READ_TIMEOUT = float(os.environ.get("KWIKID_READ_TIMEOUT", "60"))
# How long a worker may hold a batch it is sending before another may reclaim it.
UPLOAD_LEASE_SECONDS = env_int("UPLOAD_LEASE_SECONDS", 180)
UPLOAD_MAX_ATTEMPTS = env_int("UPLOAD_MAX_ATTEMPTS", 6)
# An import's check or import started longer ago than this, which no worker holds, is failed and its file
# deleted by the hourly sweep (bulkdata.services.imports_fail_stuck); above the import tasks' time limit.
IMPORT_JOB_TIMEOUT_SECONDS = env_int("IMPORT_JOB_TIMEOUT_SECONDS", 2 * 3600)

# Registration tracking (registry.services): how soon after KwikID's acceptance a record is first searched
# at the registry; each later wait is three times the one before, up to the maximum. Institutions set how
# many days the checks go on and how many searches a day they may make.
REGISTRY_FIRST_CHECK_SECONDS = env_int("REGISTRY_FIRST_CHECK_SECONDS", 600)
REGISTRY_MAX_CHECK_INTERVAL_SECONDS = env_int("REGISTRY_MAX_CHECK_INTERVAL_SECONDS", 2 * 24 * 3600)
# Records claimed (and their outcomes kept in one transaction) at a time, per institution.
REGISTRY_CHECK_BATCH = env_int("REGISTRY_CHECK_BATCH", 50)
# Searches of a batch made at once (threads that only wait for KwikID; 1: one after another).
REGISTRY_SEARCH_THREADS = max(1, env_int("REGISTRY_SEARCH_THREADS", 4))
# How often beat starts a checking pass, and how long one pass task goes on before it leaves the rest to
# the next (it stays well inside the task time limit).
REGISTRY_CHECK_EVERY_SECONDS = env_int("REGISTRY_CHECK_EVERY_SECONDS", 60)
REGISTRY_PASS_SECONDS = env_int("REGISTRY_PASS_SECONDS", 150)

# The API for the bank's own systems (api app). A body above API_MAX_BODY_BYTES is refused (413) before it
# is read: 10 MB holds 1,000 records (about 1.5 KB each) with room to spare. Each client's rate limit is its
# own (ApiClient.rate_limit_per_minute, API_DEFAULT_RATE_LIMIT for new clients), counted in one fixed
# one-minute window per client in the "api" cache: Redis when REDIS_URL is set, so every web process
# shares the count. A status change is listed by GET /api/v1/records/ once API_CHANGES_SETTLE_SECONDS have
# passed, so a transaction that commits late cannot be skipped by a poller's cursor.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 10 * 1024 * 1024)
API_MAX_RECORDS = env_int("API_MAX_RECORDS", 1000)
API_DEFAULT_RATE_LIMIT = env_int("API_DEFAULT_RATE_LIMIT", 120)
API_CHANGES_SETTLE_SECONDS = env_int("API_CHANGES_SETTLE_SECONDS", 5)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "api"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api"}
    ),
}

# Mail (notifications): printed to the console unless EMAIL_HOST is set (then SMTP), or a backend is named.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=EMAIL_PORT == 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "CKYC Portal <ckyc-portal@localhost>")
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
# The portal's address as people reach it, for links in emails.
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000")
# From this hour (local time) each checker's daily summary is made, once a day.
NOTIFY_DIGEST_HOUR = env_int("NOTIFY_DIGEST_HOUR", 8)
# How often beat turns new returns and rejections into notifications and sends pending emails.
NOTIFY_EVERY_SECONDS = env_int("NOTIFY_EVERY_SECONDS", 60)
# The dashboard keeps its figures this long per set of branches (exact counts over a million records take
# about a second); 0 computes them on every view. Django's default cache: per process, in memory.
DASHBOARD_CACHE_SECONDS = env_int("DASHBOARD_CACHE_SECONDS", 30)

# Webhooks (api.webhooks): status changes of API clients' records POSTed to their callback URLs. HTTP
# timeouts (connect, read) in seconds; redirects are never followed. Plain http only where allowed (a local
# receiver for `make run` or tests), HTTPS otherwise. A failed delivery waits 30 s, 2 min, 10 min, 1 h,
# then 6 h between attempts (held in the database, not in the broker) and fails after the maximum.
WEBHOOK_CONNECT_TIMEOUT = float(os.environ.get("WEBHOOK_CONNECT_TIMEOUT", "3"))
WEBHOOK_READ_TIMEOUT = float(os.environ.get("WEBHOOK_READ_TIMEOUT", "10"))
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
# How often beat derives new deliveries and sends those due; how long one sending run goes on before it
# leaves the rest to the next (well inside the task time limit).
WEBHOOK_DERIVE_EVERY_SECONDS = env_int("WEBHOOK_DERIVE_EVERY_SECONDS", 30)
WEBHOOK_SEND_EVERY_SECONDS = env_int("WEBHOOK_SEND_EVERY_SECONDS", 30)
WEBHOOK_PASS_SECONDS = env_int("WEBHOOK_PASS_SECONDS", 120)

# One handler, on the root logger, through which every record passes: its filter masks PAN-, Aadhaar- and
# mobile-like strings and bearer tokens. Django's own loggers are re-declared without handlers so that
# they propagate here instead of to Django's default handlers, which have no such filter.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_pii": {"()": "ckycportal.logging.RedactPIIFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_pii"]}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("PORTAL_LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"level": "INFO"},
        "django.server": {"level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},  # its start-up banner on every manage.py command
    },
}

CELERY_BEAT_SCHEDULE = {
    "uploads-sweep": {
        "task": "uploads.tasks.uploads_sweep",
        "schedule": float(UPLOAD_ASSEMBLE_EVERY_SECONDS),
    },
    "registrations-check": {
        "task": "registry.tasks.registrations_check",
        "schedule": float(REGISTRY_CHECK_EVERY_SECONDS),
    },
    "derive-notifications": {
        "task": "reports.tasks.notifications_derive",
        "schedule": float(NOTIFY_EVERY_SECONDS),
    },
    "derive-webhook-deliveries": {
        "task": "api.tasks.webhook_deliveries_derive",
        "schedule": float(WEBHOOK_DERIVE_EVERY_SECONDS),
    },
    "send-webhook-deliveries": {
        "task": "api.tasks.webhook_deliveries_send",
        "schedule": float(WEBHOOK_SEND_EVERY_SECONDS),
    },
    # Uploaded import files hold PII: deleted a day after upload, and with the job when its check or import
    # is stuck past IMPORT_JOB_TIMEOUT_SECONDS (bulkdata.services.imports_purge_expired).
    "purge-import-files": {"task": "bulkdata.tasks.imports_purge_expired", "schedule": 3600.0},
}
