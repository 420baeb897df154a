"""Production settings refuse to start without their secrets, naming every one that is missing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# What start-up reads from the environment; each test says which of these it sets.
SETTINGS_VARIABLES = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "CUSTODY_DEBUG",
    "CUSTODY_CACHE_REDIS_URL",
    "CUSTODY_DATABASE_OWNER_URL",
)
PRODUCTION = {
    "CUSTODY_DEBUG": "0",
    "SECRET_KEY": "s" * 50,
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def start_django(*, then: str = "", **overrides) -> subprocess.CompletedProcess:
    """Start Django's settings in a fresh process with only `overrides` set, then run `then` (with `settings`)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES and not k.startswith("CUSTODY_DB_")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; {then}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_secret_key_database_url_and_redis_url():
    result = start_django(CUSTODY_DEBUG="0")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        assert name in last_line


def test_production_names_only_what_is_missing():
    result = start_django(CUSTODY_DEBUG="0", SECRET_KEY="s" * 50, DATABASE_URL="postgres://postgres@127.0.0.1:5432/x")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "REDIS_URL" in last_line and "SECRET_KEY" not in last_line and "DATABASE_URL" not in last_line


def test_debug_off_is_the_default():
    result = start_django()
    assert result.returncode != 0 and "DEBUG off" in result.stderr


def test_production_starts_when_its_secrets_are_given():
    result = start_django(**PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_a_malformed_setting_is_named():
    result = start_django(CUSTODY_DEBUG="maybe")
    assert result.returncode != 0 and "CUSTODY_DEBUG must be true or false" in result.stderr


def database_options(**overrides) -> str:
    """The database OPTIONS production settings build."""
    result = start_django(then="print(settings.DATABASES['default'].get('OPTIONS', {}))", **{**PRODUCTION, **overrides})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_hot_path_prepared_statements_are_on_by_default_and_can_be_turned_off_for_poolers():
    assert "'prepare_threshold': 5" in database_options()
    assert "prepare_threshold" not in database_options(CUSTODY_DB_PREPARED_STATEMENTS="0")


def cache_location(**overrides) -> subprocess.CompletedProcess:
    """Prints the cache's Redis URL, then the broker's."""
    return start_django(
        then="print(settings.CACHES['default']['LOCATION'], settings.CELERY_BROKER_URL)", **{**PRODUCTION, **overrides}
    )


def test_the_cache_keeps_a_redis_database_apart_from_the_task_queue():
    derived = cache_location(REDIS_URL="redis://127.0.0.1:6379/4")
    assert derived.stdout.split() == ["redis://127.0.0.1:6379/5", "redis://127.0.0.1:6379/4"]
    chosen = cache_location(REDIS_URL="redis://q:6379/0", CUSTODY_CACHE_REDIS_URL="redis://c:6379/3")
    assert chosen.stdout.split() == ["redis://c:6379/3", "redis://q:6379/0"]
    shared = cache_location(REDIS_URL="redis://q:6379/2", CUSTODY_CACHE_REDIS_URL="redis://q:6379/2")
    assert shared.returncode != 0 and "clearing the cache would flush the task queue" in shared.stderr
    last = cache_location(REDIS_URL="redis://q:6379/15")
    assert last.returncode != 0 and "set CUSTODY_CACHE_REDIS_URL" in last.stderr


def owner_database(**overrides) -> subprocess.CompletedProcess:
    """Prints the `owner` alias's user/host/port/database (or `none`)."""
    return start_django(
        then="owner = settings.DATABASES.get('owner'); "
        "print('/'.join(str(owner[k]) for k in ('USER', 'HOST', 'PORT', 'NAME')) if owner else 'none')",
        **{**PRODUCTION, "DATABASE_URL": "postgres://custody_app:a@db:5432/custody", **overrides},
    )


def test_the_owner_url_adds_an_owner_connection_to_the_same_database():
    assert owner_database().stdout.strip() == "none"
    owner = owner_database(CUSTODY_DATABASE_OWNER_URL="postgres://custody_owner:o@db/custody")
    assert owner.stdout.strip() == "custody_owner/db//custody", owner.stderr


def test_the_owner_url_must_name_the_same_database_as_another_role():
    elsewhere = owner_database(CUSTODY_DATABASE_OWNER_URL="postgres://custody_owner:o@db:5432/other")
    assert elsewhere.returncode != 0 and "same host, port and database as DATABASE_URL" in elsewhere.stderr
    same_role = owner_database(CUSTODY_DATABASE_OWNER_URL="postgres://custody_app:a@db:5432/custody")
    assert same_role.returncode != 0 and "another user than DATABASE_URL's" in same_role.stderr
    sqlite = owner_database(CUSTODY_DATABASE_OWNER_URL="sqlite:////tmp/x.sqlite3")
    assert sqlite.returncode != 0 and "must both be postgres:// URLs" in sqlite.stderr
