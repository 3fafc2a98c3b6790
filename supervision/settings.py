"""Settings for 群众监督, read from the environment.

Check out the code and it works: SQLite by default, PostgreSQL through ``DATABASE_URL``.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY 未设置：生产模式（DJANGO_DEBUG=0）下必须提供一个随机密钥。"
            " DJANGO_SECRET_KEY is not set: production mode (DJANGO_DEBUG=0) needs a random"
            " secret key, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"
# Rotating the key (docs/operations.md): the old one stays here until the sessions it signed
# have expired, so nobody is logged out by the change.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "accounts",
    "supervision",
    "api",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_filters",
    "ninja",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "simple_history",
    "django_otp",
    "django_otp.plugins.otp_totp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "supervision.security.SecurityHeadersMiddleware",
    "supervision.security.RejectNulMiddleware",
    # The database or Redis away, the photo disk full: 503 「系统繁忙，请稍后再试」, not a 500.
    "supervision.unavailable.ServiceUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.StaffIdleTimeoutMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # Every login page refuses an address over LOGIN_FAILURES_PER_IP (accounts/limits.py).
    "accounts.middleware.LoginLimitMiddleware",
]

ROOT_URLCONF = "supervision.urls"
WSGI_APPLICATION = "supervision.wsgi.application"

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
                "supervision.context_processors.unread_notifications",
                "supervision.context_processors.site",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# Database: SQLite file (WAL, immediate transactions) unless DATABASE_URL names another.
# PostgreSQL: a psycopg connection pool in each process (DATABASE_POOL_SIZE connections at most;
# 0 turns the pool off and keeps each connection open for 60 s instead).
DATABASE_URL = env_str("DATABASE_URL")
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 4)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"].endswith("postgresql") and DATABASE_POOL_SIZE:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            "timeout": 10,
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA busy_timeout=20000;"
                    # Read the file through the page cache (256 MB mapped) and keep 32 MB of
                    # pages per connection: the province's 300 MB database mostly in memory.
                    "PRAGMA mmap_size=268435456;"
                    "PRAGMA cache_size=-32000;"
                    "PRAGMA temp_store=MEMORY;"
                ),
            },
            # Kept open between requests: opening one runs the PRAGMAs above each time.
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LockoutBackend",
    "accounts.backends.UsernameOrMobileBackend",
]
# django-axes: 5 failed logins for one account lock it for 15 minutes (also with the right
# password); a mobile number counts as its account. The per-address limit across accounts is
# accounts/limits.py's (LOGIN_FAILURES_PER_IP in 15 minutes). Both hold on every login path: the
# site's, the two-factor step, /panel/login/ and /admin/login/; both answer 429.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_USERNAME_CALLABLE = "accounts.backends.lockout_username"
AXES_CLIENT_STR_CALLABLE = "accounts.limits.client_str"  # its log lines: escaped, masked
AXES_LOCKOUT_CALLABLE = "accounts.limits.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 30)
OTP_TOTP_ISSUER = "群众监督"
# How many reverse proxies (nginx …) stand before the app: the visitor's address is then read
# from X-Forwarded-For, for the login and voting-code limits and for django-axes.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# The cache holds the figures, the login and voting-code counters: with several app processes
# they must share one (CACHE_URL=redis://127.0.0.1:6379/1); without it, each process keeps its own.
CACHE_URL = env_str("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# axes.W006 wants 'ip_address' among the lockout parameters; with one shared limit of 5 that
# would lock out a whole subdistrict office behind one NAT address. The per-address limit is
# accounts/limits.py's instead (LOGIN_FAILURES_PER_IP), so the warning is silenced on purpose.
# Rendered issue cards and filter options (supervision/fragments.py), apart from the default
# cache so that they never push out its counters and figures.
CACHES["fragments"] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "fragments",
    }
    if CACHE_URL
    else {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "OPTIONS": {"MAX_ENTRIES": env_int("FRAGMENT_CACHE_ENTRIES", 5000)},
    }
)
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.StaffComplexityValidator"},
]

# Internationalisation: Chinese first, English available.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
# Behind nginx: photos are checked by Django and sent by nginx from an `internal` location
# (e.g. MEDIA_ACCEL_REDIRECT=/protected-media/ with `location /protected-media/ { internal;
# alias /srv/qunzhong/media/; }`). Unset, Django streams them itself.
MEDIA_ACCEL_REDIRECT = env_str("MEDIA_ACCEL_REDIRECT")

# Background tasks (email, WeCom webhooks, the overdue sweep): Django's tasks API with the
# database backend; run ``manage.py db_worker`` beside the web server (``make run`` does).
TASKS = {
    "default": {
        "BACKEND": env_str("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 5
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "群众监督 <noreply@localhost>")
# The address people open the site at, for the links in emails, WeCom messages and the daily
# digest (sent by the worker, which has no request to ask). Set it in production; `make run`
# sets it to the port it serves on; the default is runserver's.
SITE_URL = env_str("SITE_URL").strip().rstrip("/") or "http://127.0.0.1:8000"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Staff sessions end after this long without a request (MLPS: idle timeout); see accounts.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
STAFF_IDLE_TIMEOUT = env_int("STAFF_IDLE_TIMEOUT", 30 * 60)
if not DEBUG:
    # Production is served over HTTPS behind a reverse proxy that sets X-Forwarded-Proto.
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Only a load test on 127.0.0.1 over plain HTTP turns these off (DJANGO_SECURE_COOKIES=0).
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True

# Excel exports of up to this many issues are written inside the request; larger ones by the
# background worker into a private file under MEDIA_ROOT/private/exports/, kept this many days.
EXPORT_INLINE_MAX_ROWS = env_int("EXPORT_INLINE_MAX_ROWS", 5000)
EXPORT_KEEP_DAYS = env_int("EXPORT_KEEP_DAYS", 7)

# Requests per minute per API key (JSON API and Open311), counted in the cache.
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 120)
# … and per client address for requests without a valid key (public projects, Open311 reads).
API_ANONYMOUS_RATE_LIMIT = env_int("API_ANONYMOUS_RATE_LIMIT", 60)

# Residents' letters (居民来信): how many one address and one project may send in an hour, the
# supervisors' time to triage one (working days; one more and it goes to the subdistrict office's
# panel), and the days a reply number is kept after the letter was handled.
LETTERS_PER_ADDRESS_PER_HOUR = env_int("LETTERS_PER_ADDRESS_PER_HOUR", 5)
LETTERS_PER_PROJECT_PER_HOUR = env_int("LETTERS_PER_PROJECT_PER_HOUR", 60)
LETTER_TRIAGE_WORKING_DAYS = env_int("LETTER_TRIAGE_WORKING_DAYS", 2)
LETTER_MOBILE_KEEP_DAYS = env_int("LETTER_MOBILE_KEEP_DAYS", 180)

# 竣工验收 with residents: the share of the residents' representatives who must agree
# ("2/3": two thirds), and whether an open urgent issue of the project holds the acceptance back.
ACCEPTANCE_MIN_AGREE = env_str("ACCEPTANCE_MIN_AGREE", "2/3")
ACCEPTANCE_NO_OPEN_URGENT = env_bool("ACCEPTANCE_NO_OPEN_URGENT", True)

# Time limits of the issue's life, in working days of the official calendar (调休 included),
# except URGENT_SIGN_FOR_HOURS which counts clock hours.
SUPERVISION = {
    "SIGN_FOR_WORKING_DAYS": env_int("SUPERVISION_SIGN_FOR_DAYS", 1),
    "FIRST_REPLY_WORKING_DAYS": env_int("SUPERVISION_FIRST_REPLY_DAYS", 3),
    "RECTIFY_WORKING_DAYS": env_int("SUPERVISION_RECTIFY_DAYS", 7),
    "URGENT_SIGN_FOR_HOURS": env_int("SUPERVISION_URGENT_SIGN_FOR_HOURS", 2),
    "URGENT_RECTIFY_WORKING_DAYS": env_int("SUPERVISION_URGENT_RECTIFY_DAYS", 1),
    # The reporter's check of a fix or an answer (回访): a reminder, then 逾期未评价.
    "VERIFY_REMIND_WORKING_DAYS": env_int("SUPERVISION_VERIFY_REMIND_DAYS", 2),
    "VERIFY_CLOSE_WORKING_DAYS": env_int("SUPERVISION_VERIFY_CLOSE_DAYS", 5),
    "WORKDAY_ENDS_AT": "17:30",
    "HOTLINE": env_str("SUPERVISION_HOTLINE", "0577-65800000"),
}

# The audit log also goes to this file when set (production: /var/log/qunzhong/audit.log, kept
# 180 days by deploy/logrotate/qunzhong). WatchedFileHandler reopens it once logrotate moved it.
AUDIT_LOG_FILE = env_str("AUDIT_LOG_FILE")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The audit log is JSON lines, one record per event that no input can split (a username
    # with CR/LF or U+2028 stays inside its record): accounts/auditlog.py.
    "formatters": {"audit": {"()": "accounts.auditlog.JsonLinesFormatter"}},
    "filters": {"audit_escape": {"()": "accounts.auditlog.EscapeControls"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "audit_console": {"class": "logging.StreamHandler", "formatter": "audit"},
        **(
            {
                "audit_file": {
                    "class": "logging.handlers.WatchedFileHandler",
                    "filename": AUDIT_LOG_FILE,
                    "encoding": "utf-8",
                    "formatter": "audit",
                }
            }
            if AUDIT_LOG_FILE
            else {}
        ),
    },
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # Logins, logouts and failed logins with time, account and address (kept ≥ 180 days
        # by the log shipper; see README). Never a password or a full mobile number.
        "audit": {
            "handlers": ["audit_console", "audit_file"] if AUDIT_LOG_FILE else ["audit_console"],
            "filters": ["audit_escape"],
            "level": "INFO",
            "propagate": False,
        },
        "django.db.backends": {"level": "INFO"},
    },
}

# Demo data is for people trying the product on their own machine, never for production.
DEMO_DATA_ALLOWED = DEBUG

# --- SMS codes (短信验证码登录 and 短信重设密码, issue 24) ---------------------------------------
# Off unless SMS_BACKEND is set: then the login page offers 「短信验证码登录」 and 「忘记密码？用短信
# 验证码重设」; without it those pages answer 404 and nothing connects anywhere (accounts/sms.py).
# SMS_BACKEND: "console" (prints the code, for development and the demo), "aliyun", "tencent",
# or the dotted path of a class with ``send_code(mobile, code, minutes)``.
SMS_BACKEND = env_str("SMS_BACKEND").strip()
SMS_SIGN_NAME = env_str("SMS_SIGN_NAME", "群众监督")  # the signature approved by the provider
SMS_TEMPLATE = env_str("SMS_TEMPLATE")  # Aliyun TemplateCode (SMS_…) or Tencent TemplateId
SMS_TIMEOUT = env_int("SMS_TIMEOUT", 5)  # seconds to connect and to read the provider's answer
SMS_ALIYUN_ACCESS_KEY_ID = env_str("SMS_ALIYUN_ACCESS_KEY_ID")
SMS_ALIYUN_ACCESS_KEY_SECRET = env_str("SMS_ALIYUN_ACCESS_KEY_SECRET")
SMS_ALIYUN_ENDPOINT = env_str("SMS_ALIYUN_ENDPOINT", "https://dysmsapi.aliyuncs.com")
SMS_TENCENT_SECRET_ID = env_str("SMS_TENCENT_SECRET_ID")
SMS_TENCENT_SECRET_KEY = env_str("SMS_TENCENT_SECRET_KEY")
SMS_TENCENT_SDK_APP_ID = env_str("SMS_TENCENT_SDK_APP_ID")
SMS_TENCENT_REGION = env_str("SMS_TENCENT_REGION", "ap-guangzhou")
SMS_TENCENT_ENDPOINT = env_str("SMS_TENCENT_ENDPOINT", "https://sms.tencentcloudapi.com")
# Supervisors may always sign in by SMS code when SMS is configured; staff and the bureau only
# when this is on (and whoever has two-factor login still gives its code afterwards).
SMS_STAFF_LOGIN = env_bool("SMS_STAFF_LOGIN", False)
# Codes one number, and one client address, may ask for (sign-in and reset together).
SMS_CODES_PER_NUMBER_PER_HOUR = env_int("SMS_CODES_PER_NUMBER_PER_HOUR", 5)
SMS_CODES_PER_NUMBER_PER_DAY = env_int("SMS_CODES_PER_NUMBER_PER_DAY", 10)
SMS_CODES_PER_IP_PER_HOUR = env_int("SMS_CODES_PER_IP_PER_HOUR", 20)
SMS_CODES_PER_IP_PER_DAY = env_int("SMS_CODES_PER_IP_PER_DAY", 100)
# The HTTP libraries under the providers' SDKs write request URLs (Aliyun puts the number in the
# query string) at DEBUG: keep them quiet even when DJANGO_LOG_LEVEL=DEBUG.
LOGGING["loggers"].update(
    {
        name: {"level": "WARNING"}
        for name in (
            "urllib3",
            "aiohttp",
            "darabonba-core",
            "alibabacloud-tea",
            "tencentcloud_sdk_common",
        )
    }
)
# --- end of SMS codes ------------------------------------------------------------------------

# --- WeChat sign-in and messages (微信公众号网页授权 snsapi_base, 模板消息; issue 24) ------------
# Off unless both WECHAT_APP_ID and WECHAT_APP_SECRET are set: then a supervisor may bind their
# WeChat in 设置 and is signed in without a password when the login page is opened inside WeChat;
# without them no button shows, /accounts/wechat/… and /me/wechat/… answer 404 and nothing
# connects (accounts/wechat.py). Messages need WECHAT_TEMPLATE_ID too.
WECHAT_APP_ID = env_str("WECHAT_APP_ID").strip()
WECHAT_APP_SECRET = env_str("WECHAT_APP_SECRET").strip()
# A template of the 公众号 with the fields first, keyword1 (事项), keyword2 (进展), keyword3
# (时间) and remark.
WECHAT_TEMPLATE_ID = env_str("WECHAT_TEMPLATE_ID").strip()
WECHAT_TIMEOUT = env_int("WECHAT_TIMEOUT", 5)  # seconds to connect and to read WeChat's answer
# Where WeChat's endpoints live (the tests point them at stand-ins on 127.0.0.1).
WECHAT_OPEN_URL = env_str("WECHAT_OPEN_URL", "https://open.weixin.qq.com").rstrip("/")
WECHAT_API_URL = env_str("WECHAT_API_URL", "https://api.weixin.qq.com").rstrip("/")
# SMS notices (消息提醒 by 短信) use their own template, with the reference as ${ref} / {1} and
# what happened as ${what} / {2}; without it only the console backend sends them.
SMS_NOTICE_TEMPLATE = env_str("SMS_NOTICE_TEMPLATE").strip()
# Anonymous GETs of the login page from WeChat's browser go through WeChat's sign-in once.
MIDDLEWARE = [*MIDDLEWARE, "accounts.wechat.WeChatSignInMiddleware"]
# --- end of WeChat ---------------------------------------------------------------------------
