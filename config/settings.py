"""Custody settings: every value comes from the environment (documented in docs/configuration.md)."""

from pathlib import Path

import dj_database_url
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from common.env import (
    check_owner_database,
    env_bool,
    env_int,
    env_list,
    env_str,
    redis_next_database,
    require_in_production,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CUSTODY_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("CUSTODY_DEBUG", False)
# Production refuses to start without its secrets (issue: no silent fallback to a development default).
require_in_production(["SECRET_KEY", "DATABASE_URL", "REDIS_URL"], debug=DEBUG)

SECRET_KEY = env_str("SECRET_KEY", "development-only-not-secret")
ALLOWED_HOSTS = env_list("CUSTODY_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CUSTODY_CSRF_TRUSTED_ORIGINS", [])
CUSTODY_VERSION = "0.1.0"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files, never from a CDN
    "csp",
    "guardian",
    # Custody's apps, from the ground up: each imports only the apps listed before it (docs/architecture.md).
    "changecontrol",
    "alerts",
    "evidence",
    "traceability",
    "approvals",
    "runtime",
    "reports",
    "home",
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so static files carry these headers too (docs/security.md).
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "common.security_headers.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "common.middleware.RequestContextMiddleware",
    "common.middleware.RefuseUnstorableInputMiddleware",
    "common.middleware.ApiBodyLimitsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "changecontrol.middleware.SessionRefusalMiddleware",
    "changecontrol.middleware.IdleSessionTimeoutMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
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
                "config.context_processors.custody",
            ],
            # `{% load safe_links %}`: the one way a page links a URL someone supplied (common is not an app).
            "libraries": {"safe_links": "common.templatetags.safe_links"},
        },
    },
]

# Embedded default: SQLite under var/. Production and tests: DATABASE_URL (PostgreSQL).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'custody.sqlite3'}"),
        conn_max_age=env_int("CUSTODY_DB_CONN_MAX_AGE", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # SQLite cannot make the alert outbox's one-alert-per-fact constraint (NULLS NOT DISTINCT). The embedded default
    # is one process with in-process tasks, so no two callers race to raise the same alert; PostgreSQL enforces it.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
elif env_bool("CUSTODY_DB_PREPARED_STATEMENTS", True):
    # Lets common.prepared_sql prepare the hot-path statements (token lookup, status stamp). Django's own
    # cursors bind on the client and never prepare, whatever this says. Off behind a transaction-mode pooler.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
# The owner of the schema (docs/operations.md, "Database roles"): `migrate` and `create_database_roles` connect as
# it; DATABASE_URL's role only reads and writes rows, so the application cannot ALTER, TRUNCATE or disable the
# triggers that seal records. Set only where migrations run, never on the application hosts.
CUSTODY_DATABASE_OWNER_URL = env_str("CUSTODY_DATABASE_OWNER_URL", "")
if CUSTODY_DATABASE_OWNER_URL:
    DATABASES["owner"] = dj_database_url.parse(CUSTODY_DATABASE_OWNER_URL, conn_max_age=0)
    check_owner_database(DATABASES["owner"], DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "changecontrol.User"
AUTHENTICATION_BACKENDS = [
    "changecontrol.auth.LockoutModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous people see nothing
GUARDIAN_RAISE_403 = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
PASSWORD_HASHERS = env_list(
    "CUSTODY_PASSWORD_HASHERS",
    ["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Part 11 §11.300(d): lock an account after repeated failed sign-ins or signature attempts.
CUSTODY_LOCKOUT_THRESHOLD = env_int("CUSTODY_LOCKOUT_THRESHOLD", 5, minimum=1)
CUSTODY_LOCKOUT_MINUTES = env_int("CUSTODY_LOCKOUT_MINUTES", 30, minimum=0)  # 0: until an administrator unlocks
# Sign-in throttling (docs/security.md): a (username, client) pair stops after CUSTODY_LOCKOUT_THRESHOLD failures, a
# client after CUSTODY_SIGNIN_CLIENT_LIMIT failures across usernames, for the window; sign-in failures lock the account
# only when they came from CUSTODY_LOCKOUT_CLIENTS distinct clients.
CUSTODY_SIGNIN_WINDOW_MINUTES = env_int("CUSTODY_SIGNIN_WINDOW_MINUTES", 15, minimum=1)
CUSTODY_SIGNIN_CLIENT_LIMIT = env_int("CUSTODY_SIGNIN_CLIENT_LIMIT", 20, minimum=1)
CUSTODY_LOCKOUT_CLIENTS = env_int("CUSTODY_LOCKOUT_CLIENTS", 3, minimum=1)
CUSTODY_SIGNIN_CACHE = "default"  # the cache alias holding the counters (shared by every web process)
# Part 11 §11.200(a)(1)(ii): sessions end after inactivity.
CUSTODY_IDLE_TIMEOUT_MINUTES = env_int("CUSTODY_IDLE_TIMEOUT_MINUTES", 15, minimum=1)
SESSION_COOKIE_AGE = env_int("CUSTODY_SESSION_MAX_HOURS", 12, minimum=1) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("CUSTODY_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("CUSTODY_BEHIND_TLS_PROXY", False) else None

# Response headers (docs/security.md). Off TLS (`make run`) nothing redirects and no HSTS is sent; where Custody is
# served over https, CUSTODY_TLS=1 redirects http to https and pins https in browsers for CUSTODY_HSTS_SECONDS.
CUSTODY_TLS = env_bool("CUSTODY_TLS", False)
SECURE_SSL_REDIRECT = CUSTODY_TLS
SECURE_HSTS_SECONDS = env_int("CUSTODY_HSTS_SECONDS", 365 * 24 * 3600, minimum=0) if CUSTODY_TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CUSTODY_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = False  # preloading is a promise about the whole domain: its owner makes it, not Custody
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"  # record IDs in our URLs stay with us
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CUSTODY_PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), usb=()"
)
# No inline script or style anywhere: every script and stylesheet is a file under static/. A template that cannot
# avoid an inline script gives it `nonce="{{ request.csp_nonce }}"` (django-csp adds that nonce only when used).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}
# Where browsers report what the policy blocked (a collector of yours); empty: reported in the browser console only.
CUSTODY_CSP_REPORT_URI = env_str("CUSTODY_CSP_REPORT_URI", "")
if CUSTODY_CSP_REPORT_URI:
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [CUSTODY_CSP_REPORT_URI]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("CUSTODY_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("CUSTODY_MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": env_str("CUSTODY_EVIDENCE_STORAGE", "django.core.files.storage.FileSystemStorage")},
    # Production serves hashed, compressed files collected by `collectstatic`; development and tests serve
    # the source files as they are.
    "staticfiles": {
        "BACKEND": env_str(
            "CUSTODY_STATIC_STORAGE",
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# S3-compatible evidence storage (with `django-storages[s3]` installed and CUSTODY_EVIDENCE_STORAGE set to
# storages.backends.s3.S3Storage): the bucket should have object lock, so stored evidence cannot be rewritten.
# Credentials come from the standard AWS environment variables or the instance role, never from here.
if "s3" in STORAGES["default"]["BACKEND"].lower():
    STORAGES["default"]["OPTIONS"] = {
        "bucket_name": env_str("CUSTODY_S3_BUCKET", ""),
        "endpoint_url": env_str("CUSTODY_S3_ENDPOINT_URL", "") or None,
        "region_name": env_str("CUSTODY_S3_REGION", "") or None,
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": True,
    }
    if not STORAGES["default"]["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("CUSTODY_EVIDENCE_STORAGE is an S3 backend: set CUSTODY_S3_BUCKET to its bucket")

# Evidence uploads: anything over the limit is refused with 413 before it is stored.
CUSTODY_MAX_UPLOAD_BYTES = env_int("CUSTODY_MAX_UPLOAD_MB", 50, minimum=1) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Custody's own Ed25519 signing key (manifests, bundles, audit checkpoints).
CUSTODY_SIGNING_KEY_FILE = Path(env_str("CUSTODY_SIGNING_KEY_FILE", str(VAR_DIR / "keys" / "custody-signing.pem")))
CUSTODY_SIGNING_KEY_AUTOCREATE = env_bool("CUSTODY_SIGNING_KEY_AUTOCREATE", DEBUG)
CUSTODY_RETIRED_PUBLIC_KEY_FILES = env_list("CUSTODY_RETIRED_PUBLIC_KEY_FILES", [])
# Key for encrypting stored CI-provider credentials (Fernet); derived from SECRET_KEY when unset.
CUSTODY_CREDENTIALS_KEY = env_str("CUSTODY_CREDENTIALS_KEY", "")

REDIS_URL = env_str("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
# Clearing a Django cache flushes its whole Redis database (FLUSHDB), and REDIS_URL's database holds the broker's
# queued tasks and its queue bindings: the cache keeps a database of its own, so clearing it loses no task.
CACHE_REDIS_URL = env_str("CUSTODY_CACHE_REDIS_URL", "") or (redis_next_database(REDIS_URL) if REDIS_URL else "")
if REDIS_URL and CACHE_REDIS_URL.rstrip("/") == REDIS_URL.rstrip("/"):
    raise ImproperlyConfigured(
        "CUSTODY_CACHE_REDIS_URL must name another Redis database than REDIS_URL: clearing the cache would "
        "flush the task queue"
    )
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CUSTODY_TASKS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CUSTODY_CELERY_QUEUE", "custody")
# Where each signed audit checkpoint is also published, outside the database (changecontrol.witnesses):
# file:/path/checkpoints.jsonl, git:/path/repository, https://witness.example/checkpoints — comma-separated.
CUSTODY_AUDIT_WITNESSES = env_list("CUSTODY_AUDIT_WITNESSES", [])
CUSTODY_AUDIT_WITNESS_TOKEN = env_str("CUSTODY_AUDIT_WITNESS_TOKEN", "")
for _witness in CUSTODY_AUDIT_WITNESSES:
    if not _witness.startswith(("file:/", "git:/", "http://", "https://")):
        raise ImproperlyConfigured(
            f"CUSTODY_AUDIT_WITNESSES: {_witness!r} is not file:/path, git:/path or an http(s):// URL"
        )
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint": {
        "task": "changecontrol.tasks.audit_checkpoint",
        "schedule": env_int("CUSTODY_AUDIT_CHECKPOINT_MINUTES", 60, minimum=1) * 60,
    },
    # verify_audit from the last intact run (new events and what they sealed), and in full less often; a failure
    # is recorded in the trail and alerted (changecontrol.verification).
    "audit-verify": {
        "task": "changecontrol.tasks.audit_verify",
        "schedule": env_int("CUSTODY_AUDIT_VERIFY_HOURS", 24, minimum=1) * 3600,
        "kwargs": {"incremental": True},
    },
    "audit-verify-full": {
        "task": "changecontrol.tasks.audit_verify",
        "schedule": env_int("CUSTODY_AUDIT_FULL_VERIFY_DAYS", 7, minimum=1) * 24 * 3600,
        "kwargs": {"incremental": False},
    },
    # Evidence never stays in flight: re-queue pending evidence whose task was lost (the broker was down at upload),
    # re-run then fail processing stuck past its deadline (evidence.processing.evidence_sweep).
    "evidence-sweep-in-flight": {"task": "evidence.tasks.sweep_in_flight", "schedule": 60},
    # Re-queue alert deliveries whose retry is overdue (a lost broker message must not lose an alert).
    "alerts-redeliver-due": {"task": "alerts.tasks.redeliver_due", "schedule": 60},
    # Promotions whose approvals lapsed are marked expired (the status API already answers from expiry times).
    "promotions-expire": {"task": "approvals.tasks.promotions_expire", "schedule": 300},
    # Overdue break-glass retrospective reviews are alerted daily until signed (DESIGN §4.7).
    "approvals-alert-overdue-reviews": {"task": "approvals.tasks.alert_overdue_reviews", "schedule": 24 * 3600},
    # Advisory findings (runtime.osv) close when a signed VEX statement covers them; VEX arrives as evidence.
    "advisory-findings-close-by-vex": {"task": "runtime.tasks.advisory_findings_close_by_vex", "schedule": 300},
}
CUSTODY_EVIDENCE_REQUEUE_SECONDS = env_int("CUSTODY_EVIDENCE_REQUEUE_SECONDS", 120, minimum=1)
CUSTODY_EVIDENCE_DEADLINE_SECONDS = env_int("CUSTODY_EVIDENCE_DEADLINE_SECONDS", 1800, minimum=1)
CUSTODY_EVIDENCE_MAX_ATTEMPTS = env_int("CUSTODY_EVIDENCE_MAX_ATTEMPTS", 3, minimum=1)
# Webhook retry backoff in seconds, one entry per retry; after CUSTODY_ALERT_MAX_ATTEMPTS a delivery is dead.
CUSTODY_ALERT_BACKOFF_SECONDS = [
    int(s) for s in env_list("CUSTODY_ALERT_BACKOFF_SECONDS", ["30", "120", "600", "3600", "21600"])
]
CUSTODY_ALERT_MAX_ATTEMPTS = env_int("CUSTODY_ALERT_MAX_ATTEMPTS", 6, minimum=1)

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

EMAIL_BACKEND = env_str(
    "CUSTODY_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("CUSTODY_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("CUSTODY_EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("CUSTODY_FROM_EMAIL", "custody@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Custody administrators", address) for address in env_list("CUSTODY_ADMIN_EMAILS", [])]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "changecontrol.api_auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "common.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "common.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, refusing what the database cannot store (NUL) and JSON nested too deep: 400, never 500.
    "DEFAULT_PARSER_CLASSES": [
        "common.api_parsers.JSONParser",
        "common.api_parsers.MultiPartParser",
        "common.api_parsers.FormParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # `?format=csv` is ours (audit exports), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Custody API",
    "DESCRIPTION": "Change control and release approvals for regulated software delivery. See DESIGN §7.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The interactive docs load Swagger UI from our static files (drf-spectacular-sidecar), so the CSP holds there
    # too; no validator badge (it would send the schema's address to swagger.io).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Choice sets that share a field name (`kind`, `state`, `status`) get a name of their own, not a hash.
    "ENUM_NAME_OVERRIDES": {
        "PromotionStateEnum": "approvals.models.Promotion.State",
        "TraceItemKindEnum": "changecontrol.models.TraceItem.Kind",
        "GateStatusEnum": ["pass", "fail", "missing"],
        # Shared by a serializer and the detail serializer extending it: one component, under its first name.
        "SignatureOutputMeaningEnum": "changecontrol.models.Signature.Meaning",
        "PolicyVersionOutputStateEnum": "changecontrol.models.PolicyVersion.State",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("CUSTODY_LOG_LEVEL", "INFO")},
}
