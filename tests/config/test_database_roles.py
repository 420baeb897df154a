"""Two database roles (docs/operations.md, "Database roles"): the owner migrates; the application role reads and writes
rows where the seals allow, and PostgreSQL refuses it every way around them — DISABLE TRIGGER, TRUNCATE, DDL,
session_replication_role. Real roles, made by `create_database_roles` in the test database and dropped afterwards;
named after the test database, so parallel runs on one server never share them.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.db.models.signals import post_migrate

from changecontrol import audit, verification
from changecontrol.models import AuditCheckpoint, AuditEvent
from config.database_roles import OWNER_ALIAS, SCRIPT, default_connects_as
from tests.changecontrol.test_sealed_records import trail  # noqa: F401 (a fixture: the whole spine, as a sentence)

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="database roles are PostgreSQL's"),
]

ROOT = Path(__file__).resolve().parents[2]
# Written once: their triggers refuse every rewrite, and the grant leaves the application INSERT and SELECT only.
APPEND_ONLY = (
    "changecontrol_auditevent",
    "changecontrol_auditcheckpoint",
    "approvals_decision",
    "approvals_deployment",
)


@dataclass(frozen=True)
class Roles:
    owner: str
    app: str
    app_password: str
    owner_password: str

    def app_dsn(self) -> str:
        database = connection.settings_dict
        return psycopg.conninfo.make_conninfo(
            host=database["HOST"] or "localhost",
            port=database["PORT"] or 5432,
            dbname=database["NAME"],
            user=self.app,
            password=self.app_password,
        )

    def as_app(self) -> dict:
        """`default`'s settings, logging in as the application role."""
        return {**connection.settings_dict, "USER": self.app, "PASSWORD": self.app_password}

    def as_owner(self) -> dict:
        return {**connection.settings_dict, "USER": self.owner, "PASSWORD": self.owner_password}


def create_roles(roles: Roles, **extra) -> str:
    out = io.StringIO()
    env = {"ROLES_TEST_APP_PASSWORD": roles.app_password, "ROLES_TEST_OWNER_PASSWORD": roles.owner_password}
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        call_command(
            "create_database_roles",
            database="default",
            owner_role=roles.owner,
            app_role=roles.app,
            app_password_env="ROLES_TEST_APP_PASSWORD",
            owner_password_env="ROLES_TEST_OWNER_PASSWORD",
            stdout=out,
            **extra,
        )
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return out.getvalue()


def drop_roles(cursor, *names: str) -> None:
    for name in names:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            cursor.execute(f'REASSIGN OWNED BY "{name}" TO CURRENT_USER')
            cursor.execute(f'DROP OWNED BY "{name}"')
            cursor.execute(f'DROP ROLE "{name}"')


@pytest.fixture(scope="module")
def roles(django_db_setup, django_db_blocker):
    """The two roles in this test database, made by the command as a superuser would on a fresh server: the owner
    adopts every table the test run migrated."""
    with django_db_blocker.unblock():
        suffix = connection.settings_dict["NAME"].removeprefix("test_")
        made = Roles(
            owner=f"owner_{suffix}"[:63],
            app=f"app_{suffix}"[:63],
            app_password=secrets.token_urlsafe(18),
            owner_password=secrets.token_urlsafe(18),
        )
        with connection.cursor() as cursor:
            drop_roles(cursor, made.app, made.owner)  # left by an interrupted run
        create_roles(made)
        yield made
        with connection.cursor() as cursor:
            drop_roles(cursor, made.app, made.owner)


@pytest.fixture
def as_app(roles):
    """Psycopg, logged in as the application role (autocommit: each refusal stands alone)."""
    with psycopg.connect(roles.app_dsn(), autocommit=True) as app:
        yield app


def refusal(app, statement: str) -> psycopg.Error:
    """What PostgreSQL answers the application role for `statement` (which must be refused)."""
    with pytest.raises(psycopg.Error) as refused:
        app.execute(statement)
    return refused.value


def test_the_application_role_cannot_disable_a_trigger(as_app):
    for statement in (
        "ALTER TABLE changecontrol_auditevent DISABLE TRIGGER ALL",
        "ALTER TABLE changecontrol_auditevent DISABLE TRIGGER USER",
        "ALTER TABLE changecontrol_signature DISABLE TRIGGER custody_guard_changecontrol_signature",
        "DROP TRIGGER custody_audit_no_update_delete ON changecontrol_auditevent",
    ):
        error = refusal(as_app, statement)
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), statement
        assert "must be owner of" in str(error)
    enabled = as_app.execute(
        "SELECT tgenabled FROM pg_trigger WHERE tgname = 'custody_audit_no_update_delete'"
    ).fetchone()
    assert enabled == ("O",)  # the audit trail's trigger is still on


def test_the_application_role_cannot_set_session_replication_role(as_app):
    # Replica mode would skip every ordinary trigger in its session without touching a table.
    error = refusal(as_app, "SET session_replication_role = replica")
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    assert as_app.execute("SHOW session_replication_role").fetchone()[0] == "origin"


def test_the_application_role_cannot_truncate(as_app):
    for table in ("changecontrol_auditevent", "changecontrol_product", "evidence_evidence"):
        error = refusal(as_app, f"TRUNCATE {table} CASCADE")
        assert isinstance(error, psycopg.errors.InsufficientPrivilege)
        assert f"permission denied for table {table}" in str(error)  # the grant refuses it, before any trigger


def test_the_application_role_cannot_drop_alter_or_create(as_app, roles):
    for statement in (
        "DROP TABLE changecontrol_auditevent CASCADE",
        "ALTER TABLE changecontrol_auditevent ADD COLUMN note text",
        "ALTER TABLE changecontrol_signature DROP CONSTRAINT changecontrol_signature_pkey CASCADE",
        "ALTER TABLE changecontrol_auditevent OWNER TO CURRENT_USER",
        "CREATE TABLE changecontrol_shadow (id int)",
        "CREATE OR REPLACE FUNCTION custody_audit_refuse_rewrite() RETURNS trigger AS 'BEGIN RETURN NEW; END' "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER bypass BEFORE UPDATE ON changecontrol_signature FOR EACH ROW EXECUTE FUNCTION "
        "custody_audit_refuse_rewrite()",
        f'SET ROLE "{roles.owner}"',
        f'ALTER ROLE "{roles.app}" BYPASSRLS',
        f'GRANT "{roles.owner}" TO "{roles.app}"',
    ):
        assert isinstance(refusal(as_app, statement), psycopg.errors.InsufficientPrivilege), statement


def test_append_only_tables_are_insert_only_for_the_application_role(as_app, roles):
    for table in APPEND_ONLY:
        error = refusal(as_app, f"UPDATE {table} SET id = id WHERE false")
        assert f"permission denied for table {table}" in str(error)
        assert "permission denied" in str(refusal(as_app, f"DELETE FROM {table} WHERE false"))
    # The migration history is the owner's to write.
    assert "permission denied" in str(refusal(as_app, "UPDATE django_migrations SET app = app WHERE false"))
    assert "permission denied" in str(
        refusal(as_app, "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())")
    )
    with as_app.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(%s, 'changecontrol_auditevent', 'INSERT'), "
            "has_table_privilege(%s, 'changecontrol_signature', 'UPDATE'), "
            "has_table_privilege(%s, 'changecontrol_auditchainhead', 'UPDATE')",
            [roles.app] * 3,
        )
        assert cursor.fetchone() == (True, True, True)


def test_the_application_role_is_plain_and_owns_nothing(as_app, roles):
    with as_app.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin "
            "FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (False, False, False, False, False, True)
        cursor.execute("SELECT has_schema_privilege('public', 'CREATE'), pg_has_role(%s, 'MEMBER')", [roles.owner])
        assert cursor.fetchone() == (False, False)
        cursor.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public'"
        )
        assert [row[0] for row in cursor.fetchall()] == [roles.owner]
        cursor.execute(
            "SELECT DISTINCT pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname LIKE 'custody%%'"
        )
        assert [row[0] for row in cursor.fetchall()] == [roles.owner]


def test_tables_a_later_migration_creates_are_granted_to_the_application_role(roles, as_app):
    with psycopg.connect(
        psycopg.conninfo.make_conninfo(roles.app_dsn(), user=roles.owner, password=roles.owner_password),
        autocommit=True,
    ) as owner:
        owner.execute("CREATE TABLE roles_probe (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)")
        try:
            as_app.execute("INSERT INTO roles_probe (note) VALUES ('written by the application')")
            as_app.execute("UPDATE roles_probe SET note = 'and changed'")
            assert as_app.execute("SELECT note FROM roles_probe").fetchone() == ("and changed",)
            assert "permission denied" in str(refusal(as_app, "TRUNCATE roles_probe"))
        finally:
            owner.execute("DROP TABLE roles_probe")


@pytest.fixture
def as_application_role(roles, transactional_db):
    """Django's `default` connection, logged in as the application role for the whole test."""
    with default_connects_as(roles.as_app()):
        yield


@pytest.mark.django_db(transaction=True)
def test_the_application_role_writes_what_the_services_write(as_application_role, roles, trail):  # noqa: F811
    # `trail` ran every write of a product's spine through the services and the API, as the application role:
    # evidence parsed, change requests signed, a release frozen, decisions, a deployment, a checkpoint, verified.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == roles.app
    assert AuditEvent.objects.filter(action="deployment.recorded").exists()
    audit.checkpoint_create()
    assert AuditCheckpoint.objects.count() == 2
    report = verification.verify()
    assert report.intact, (report.findings, report.uncovered)


def acl_snapshot() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S') "
            "UNION ALL SELECT 'default acl', pg_get_userbyid(defaclrole), defaclacl::text FROM pg_default_acl "
            "ORDER BY 1, 2, 3"
        )
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_running_the_command_again_changes_nothing(roles):
    before = acl_snapshot()
    assert "reads and writes rows only (its password set)" in create_roles(roles)
    assert acl_snapshot() == before
    with psycopg.connect(roles.app_dsn()) as app:  # the password set again is the same password
        assert app.execute("SELECT current_user").fetchone() == (roles.app,)


@pytest.mark.django_db(transaction=True)
def test_psql_runs_the_same_script_to_the_same_grants(roles):
    before = acl_snapshot()
    database = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        host=database["HOST"] or "localhost",
        port=database["PORT"] or 5432,
        dbname=database["NAME"],
        user=database["USER"],
        password=database["PASSWORD"] or None,
    )
    command = ["psql", conninfo, "-v", "ON_ERROR_STOP=1", "--single-transaction", "--quiet", "--no-psqlrc"]
    variables = ["-v", f"owner={roles.owner}", "-v", f"app={roles.app}", "-f", str(SCRIPT)]
    try:
        result = subprocess.run([*command, *variables], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("psql is not installed")
    assert result.returncode == 0, result.stderr
    assert acl_snapshot() == before


@pytest.fixture
def owner_alias(roles):
    """CUSTODY_DATABASE_OWNER_URL, as settings.py makes it: an `owner` alias for the same database."""
    settings.DATABASES[OWNER_ALIAS] = roles.as_owner()  # the same dict as connections.settings
    try:
        yield
    finally:
        if OWNER_ALIAS in connections:
            connections[OWNER_ALIAS].close()
            del connections[OWNER_ALIAS]
        del settings.DATABASES[OWNER_ALIAS]


@pytest.mark.django_db
def test_migrate_connects_as_the_owner_when_the_owner_url_is_set(roles, owner_alias):
    seen = set()

    def who_migrates(sender, using, **kwargs):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT current_user")
            seen.add(cursor.fetchone()[0])

    post_migrate.connect(who_migrates, weak=False, dispatch_uid="who-migrates")
    try:
        call_command("migrate", verbosity=0)
        assert seen == {roles.owner}
        seen.clear()
        call_command("migrate", database=OWNER_ALIAS, verbosity=0)  # the same, through the same connection
        assert seen == {roles.owner}
    finally:
        post_migrate.disconnect(dispatch_uid="who-migrates")
    # And the test's own connection is `default` again.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == settings.DATABASES["default"]["USER"]


@pytest.mark.django_db
def test_the_command_names_what_to_fix(roles):
    with pytest.raises(CommandError, match="CUSTODY_DATABASE_OWNER_URL is not set"):
        call_command("create_database_roles")
    with pytest.raises(CommandError, match="must not be the owner role"):
        call_command("create_database_roles", database="default", owner_role=roles.app, app_role=roles.app)
    # A superuser named as the application role by mistake is refused, never demoted.
    with pytest.raises(CommandError, match="must not be the role running this"):
        call_command("create_database_roles", database="default", owner_role=roles.owner)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (True,)
    with pytest.raises(CommandError, match="not a role name"):
        call_command("create_database_roles", database="default", owner_role="x'; DROP ROLE y; --", app_role="a")
    with pytest.raises(CommandError, match="NO_SUCH_VARIABLE: that environment variable is not set"):
        call_command(
            "create_database_roles", database="default", owner_role=roles.owner, app_password_env="NO_SUCH_VARIABLE"
        )


def test_print_sql_shows_the_script_with_the_role_names_and_no_password():
    out = io.StringIO()
    call_command(
        "create_database_roles",
        database="default",
        owner_role="custody_owner",
        app_role="custody_app",
        print_sql=True,
        stdout=out,
    )
    printed = out.getvalue()
    assert "set_config('custody.owner_role', 'custody_owner', false)" in printed
    assert "set_config('custody.app_role', 'custody_app', false)" in printed
    assert "PASSWORD" not in printed


@pytest.fixture
def fresh_database():
    name = f"custody_roles_{uuid.uuid4().hex[:12]}"
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base, name
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_fresh_database_migrates_as_the_owner_and_serves_as_the_application_role(fresh_database):
    """The compose stack's order: a superuser makes the roles, the owner migrates, the application connects."""
    base, name = fresh_database
    owner, app = f"owner_{name}", f"app_{name}"
    host = psycopg.conninfo.conninfo_to_dict(base + "/postgres")
    owner_url = f"postgres://{owner}:owner-secret@{host.get('host', 'localhost')}:{host.get('port', 5432)}/{name}"
    app_url = f"postgres://{app}:app-secret@{host.get('host', 'localhost')}:{host.get('port', 5432)}/{name}"

    def manage(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if k != "CUSTODY_DATABASE_OWNER_URL"}
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        # 1. A superuser (here: the test run's role) makes both roles in the empty database.
        made = manage(
            "create_database_roles",
            "--database",
            "default",
            "--owner-role",
            owner,
            "--app-role",
            app,
            "--app-password-env",
            "APP_SECRET",
            "--owner-password-env",
            "OWNER_SECRET",
            database_url=f"{base}/{name}",
            APP_SECRET="app-secret",
            OWNER_SECRET="owner-secret",
        )
        assert made.returncode == 0, made.stderr
        # 2. The application role cannot migrate: it may not create in the schema.
        refused = manage("migrate", "--noinput", database_url=app_url)
        assert refused.returncode != 0 and "permission denied for schema public" in refused.stderr
        # 3. With the owner's URL set, `migrate` connects as the owner; the refresh after it grants the new tables.
        migrated = manage("migrate", "--noinput", database_url=app_url, CUSTODY_DATABASE_OWNER_URL=owner_url)
        assert migrated.returncode == 0, migrated.stderr
        refreshed = manage(
            "create_database_roles", "--no-password", database_url=app_url, CUSTODY_DATABASE_OWNER_URL=owner_url
        )
        assert refreshed.returncode == 0, refreshed.stderr
        # 4. The application works as its role, and still may not disable the audit trail's triggers.
        served = manage(
            "shell",
            "-c",
            "from changecontrol import audit; from django.db import connection\n"
            "audit.record(actor=None, action='roles.checked', obj=None)\n"
            "cursor = connection.cursor()\n"
            "try:\n"
            "    cursor.execute('ALTER TABLE changecontrol_auditevent DISABLE TRIGGER ALL')\n"
            "except Exception as error:\n"
            "    print('refused:', error)\n",
            database_url=app_url,
        )
        assert served.returncode == 0, served.stderr
        assert "refused: must be owner of table changecontrol_auditevent" in served.stdout
        with psycopg.connect(f"{base}/{name}") as check:
            owners = check.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname LIKE 'changecontrol_%'"
            ).fetchall()
            assert owners == [(owner,)]
            assert check.execute("SELECT count(*) FROM changecontrol_auditevent").fetchone() == (1,)
    finally:
        with psycopg.connect(f"{base}/{name}", autocommit=True) as admin:
            drop_roles(admin.cursor(), app, owner)
