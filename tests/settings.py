"""Test settings: SQLite by default; PostgreSQL with DATABASE_URL=postgres://..., MariaDB/MySQL
with DATABASE_URL=mysql://..."""

from __future__ import annotations

import os

import environ

env = environ.Env()

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "tapestry_media",
]
try:
    import django.tasks  # noqa: F401
except ImportError:  # Django 5.2: the backport is an app too
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:///:memory:")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("TEST", {})
    DATABASES["default"]["TEST"]["NAME"] = env("SQLITE_TEST_NAME", default="")
elif DATABASES["default"]["ENGINE"].endswith("mysql"):
    # 4-byte UTF-8 (emoji in metadata) and strict mode whatever the server's defaults; the test
    # database gets the same character set instead of the server's (often latin1) default.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        charset="utf8mb4", init_command="SET sql_mode='STRICT_TRANS_TABLES'"
    )
    DATABASES["default"].setdefault("TEST", {}).update(
        CHARSET="utf8mb4", COLLATION="utf8mb4_unicode_ci"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Jobs are recorded, not run: tests run them explicitly (tests/jobs.py), so nothing happens
# by accident and "nothing was submitted" can be checked against a queue that really records.
TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
if "django_tasks" in INSTALLED_APPS:
    TASKS["default"]["BACKEND"] = "django_tasks.backends.dummy.DummyBackend"

MEDIA_ROOT = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tapestry-test-media-{os.getpid()}")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"

TAPESTRY_MEDIA = {
    "BACKEND": "dummy",
    "WEBHOOK_SECRETS": ["whsec_dGVzdHMtb25seS1zZWNyZXQ=", "tests-plain-secret"],
    "PUBLIC_BASE_URL": "https://tapestry-app.com",
}

# Users are created in many tests; the production hasher costs ~0.3 s each.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
