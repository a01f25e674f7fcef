"""Settings of the legacy Django project: a stock configuration (database
sessions, PBKDF2 hasher, JSON serializer), with the values that change per
test run read from config.json, written next to manage.py by the Go starter
(internal/testutil/legacyapps)."""
import json
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
with open(BASE_DIR / "config.json") as f:
    CONFIG = json.load(f)

SECRET_KEY = CONFIG["secret_key"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "legacyproj.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": CONFIG["db_name"],
        "USER": CONFIG["db_user"],
        "PASSWORD": CONFIG.get("db_password", ""),
        "HOST": CONFIG["db_host"],
        "PORT": CONFIG["db_port"],
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = "UTC"

LOGIN_REDIRECT_URL = "/me"
SESSION_COOKIE_AGE = CONFIG.get("session_cookie_age") or 1209600

# runserver logs every request on stderr; the starter keeps it for failures only.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
