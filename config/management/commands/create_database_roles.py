"""Create or refresh the owner and application database roles and their grants (idempotent)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from config.database_roles import OWNER_ALIAS, RoleError, apply_roles, script_sql


class Command(BaseCommand):
    help = (
        "Create or refresh Custody's two database roles (config/database_roles.sql): the owner, which owns the "
        "schema and runs migrations, and the application role DATABASE_URL connects as, which may only read and "
        "write rows. Runs as the owner (CUSTODY_DATABASE_OWNER_URL). See docs/operations.md, 'Database roles'."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            default="",
            help="the connection to run as (default: owner, from CUSTODY_DATABASE_OWNER_URL; "
            "`default` runs as DATABASE_URL's role, e.g. a superuser on a fresh server)",
        )
        parser.add_argument("--owner-role", default="", help="the owner role (default: the role --database logs in as)")
        parser.add_argument("--app-role", default="", help="the application role (default: DATABASE_URL's user)")
        parser.add_argument(
            "--app-password-env",
            default="",
            metavar="VARIABLE",
            help="environment variable holding the application role's password "
            "(default: DATABASE_URL's password, when --app-role is its user)",
        )
        parser.add_argument(
            "--app-password",
            default="",
            help="the application role's password (visible to other local users in the process list: "
            "prefer --app-password-env)",
        )
        parser.add_argument(
            "--owner-password-env",
            default="",
            metavar="VARIABLE",
            help="environment variable holding a new password for the owner role (default: left as it is)",
        )
        parser.add_argument("--no-password", action="store_true", help="leave the application role's password as it is")
        parser.add_argument("--print-sql", action="store_true", help="print the SQL that would run, and run nothing")

    def handle(self, *args, **options):
        using = options["database"] or (OWNER_ALIAS if OWNER_ALIAS in settings.DATABASES else "")
        if not using:
            raise CommandError(
                "CUSTODY_DATABASE_OWNER_URL is not set: the roles are created as the owner. Set it, or run as "
                "DATABASE_URL's role with --database default --owner-role NAME (a superuser on a fresh server)."
            )
        if using not in settings.DATABASES:
            raise CommandError(f"--database {using!r} is not a configured database ({', '.join(settings.DATABASES)})")
        if connections[using].vendor != "postgresql":
            raise CommandError("database roles are PostgreSQL's: the embedded SQLite database has none")
        owner = options["owner_role"] or self._current_user(using)
        app = options["app_role"] or settings.DATABASES[DEFAULT_DB_ALIAS].get("USER", "")
        if not app:
            raise CommandError("name the application role: --app-role, or a user in DATABASE_URL")
        try:
            if options["print_sql"]:
                self.stdout.write(script_sql(owner=owner, app=app))
                return
            app_password = self._app_password(options, app)
            owner_password = self._password_from_env(options["owner_password_env"], "--owner-password-env")
            apply_roles(using=using, owner=owner, app=app, app_password=app_password, owner_password=owner_password)
        except RoleError as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            # PostgreSQL's own sentence names what this role may not do (create roles, alter another's tables).
            raise CommandError(f"PostgreSQL refused, and nothing was changed: {error}".rstrip()) from None
        password_note = "its password set" if app_password else "its password left as it was"
        self.stdout.write(
            f"Role {owner} owns the schema and runs migrations; role {app} reads and writes rows only "
            f"({password_note})."
        )

    @staticmethod
    def _current_user(using: str) -> str:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT current_user")
            return cursor.fetchone()[0]

    def _app_password(self, options, app: str) -> str:
        if options["no_password"]:
            return ""
        if options["app_password_env"]:
            return self._password_from_env(options["app_password_env"], "--app-password-env")
        if options["app_password"]:
            return options["app_password"]
        default = settings.DATABASES[DEFAULT_DB_ALIAS]
        return default.get("PASSWORD", "") if app == default.get("USER") else ""

    @staticmethod
    def _password_from_env(variable: str, option: str) -> str:
        if not variable:
            return ""
        value = os.environ.get(variable, "")
        if not value:
            raise CommandError(f"{option} {variable}: that environment variable is not set or is empty")
        return value
