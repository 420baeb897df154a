"""The owner and application database roles (docs/operations.md, "Database roles").

`config/database_roles.sql` is the one statement of what each role may do: a DBA runs it with psql, and
`create_database_roles` runs the same file through Django's connection (as the owner), then sets the application
role's password. `default_connects_as` is how `migrate` speaks as the owner.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction

SCRIPT = Path(__file__).with_name("database_roles.sql")
OWNER_ALIAS = "owner"
# Role names as Custody writes them in URLs and in psql; anything else is refused rather than quoted.
ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
# psql's :'name' (a quoted literal), the only variable syntax the script uses.
_VARIABLE = re.compile(r"(?<!:):'(\w+)'")


class RoleError(ValueError):
    """A role name or password that cannot be used, with what to fix."""


def check_role_name(name: str, *, what: str) -> str:
    if not ROLE_NAME.fullmatch(name or ""):
        raise RoleError(
            f"{what} {name!r} is not a role name Custody uses: letters, digits, _ and -, starting with a letter or _"
        )
    return name


def script_sql(*, owner: str, app: str) -> str:
    """The SQL file with its psql variables substituted as psql would (`-v owner=… -v app=…`)."""
    values = {"owner": check_role_name(owner, what="owner role"), "app": check_role_name(app, what="application role")}
    return _VARIABLE.sub(lambda match: "'" + values[match.group(1)] + "'", SCRIPT.read_text(encoding="utf-8"))


def apply_roles(
    *,
    using: str,
    owner: str,
    app: str,
    app_password: str | None = None,
    owner_password: str | None = None,
) -> None:
    """Create or refresh both roles and every grant, in one transaction: all of it holds, or none."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise RoleError("database roles are PostgreSQL's: the embedded SQLite database has none")
    sql = script_sql(owner=owner, app=app)
    with transaction.atomic(using=using), connection.cursor() as cursor, connection.wrap_database_errors:
        # Several statements and a DO block in one call: psycopg sends them as one simple query, never prepared.
        cursor.cursor.execute(sql, prepare=False)
        for role, password in ((app, app_password), (owner, owner_password)):
            if password:
                _set_password(connection, cursor, role=role, password=password)


def _set_password(connection, cursor, *, role: str, password: str) -> None:
    # The server receives a SCRAM verifier computed here, never the password: nothing to leak into its logs.
    verifier = connection.connection.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    quoted_role = connection.ops.quote_name(role)
    try:
        cursor.cursor.execute(f"ALTER ROLE {quoted_role} PASSWORD '{verifier.decode('ascii')}'", prepare=False)
    except psycopg.errors.InsufficientPrivilege:
        raise RoleError(
            f"the role running this may not set {role}'s password, so nothing was changed: give the owner CREATEROLE, "
            "or have a superuser set it (psql's \\password) and leave it out here (--no-password)"
        ) from None


@contextmanager
def default_connects_as(settings_dict: dict) -> Iterator[None]:
    """Within this block the `default` alias connects with `settings_dict` (another role's credentials), in this thread.

    Whatever runs inside — migrations, their RunPython code using `Model.objects`, the post_migrate handlers —
    uses that one connection and its transactions.
    """
    original = connections[DEFAULT_DB_ALIAS]
    # The database stays `default`'s (a test database keeps its test name): only who connects changes.
    swapped = original.__class__({**settings_dict, "NAME": original.settings_dict["NAME"]}, DEFAULT_DB_ALIAS)
    connections[DEFAULT_DB_ALIAS] = swapped
    try:
        yield
    finally:
        swapped.close()
        connections[DEFAULT_DB_ALIAS] = original
