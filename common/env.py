"""Small typed readers of environment variables: each fails loudly, naming the variable, on a bad value."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no, on/off), not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def require_in_production(names: list[str], *, debug: bool) -> None:
    """With DEBUG off, refuse to start without the production secrets, naming every one that is missing."""
    if debug:
        return
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise ImproperlyConfigured(
            "Custody is running with DEBUG off and these settings are missing: "
            + ", ".join(missing)
            + ". Set them in the environment (see docs/configuration.md), or set CUSTODY_DEBUG=1 for development."
        )


REDIS_DATABASES = 16  # Redis's default `databases`


def redis_next_database(url: str) -> str:
    """REDIS_URL with the next database number (`redis://h:6379/5` → `.../6`; no number means 0, so 1)."""
    parts = urlsplit(url)
    number = parts.path.strip("/") or "0"
    if not number.isdigit():
        raise ImproperlyConfigured(f"REDIS_URL must end with a database number, like redis://host:6379/0, not {url!r}")
    if int(number) + 1 >= REDIS_DATABASES:
        raise ImproperlyConfigured(
            f"REDIS_URL uses Redis database {number}, the last one, and the cache needs another: "
            "set CUSTODY_CACHE_REDIS_URL, or use a lower database number in REDIS_URL"
        )
    return urlunsplit(parts._replace(path=f"/{int(number) + 1}"))


def check_owner_database(owner: dict, application: dict) -> None:
    """CUSTODY_DATABASE_OWNER_URL must name DATABASE_URL's PostgreSQL database, as another role."""
    if owner["ENGINE"] != "django.db.backends.postgresql" or application["ENGINE"] != owner["ENGINE"]:
        raise ImproperlyConfigured(
            "CUSTODY_DATABASE_OWNER_URL is set: database roles are PostgreSQL's, so it and DATABASE_URL must both be "
            "postgres:// URLs"
        )

    def where(database: dict) -> tuple:
        return database["HOST"], str(database["PORT"] or 5432), database["NAME"]

    if where(owner) != where(application):
        raise ImproperlyConfigured(
            "CUSTODY_DATABASE_OWNER_URL must name the same host, port and database as DATABASE_URL "
            f"({application['HOST']}:{application['PORT']}/{application['NAME']}), with the owner's user and password"
        )
    if not owner["USER"] or owner["USER"] == application["USER"]:
        raise ImproperlyConfigured(
            "CUSTODY_DATABASE_OWNER_URL must name the owner role, another user than DATABASE_URL's: the application "
            "must not connect as the role that may alter tables and disable their triggers"
        )
