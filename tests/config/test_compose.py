"""The compose stack (docker/compose.yaml), read as compose reads it: a one-shot migrate runs as the database owner,
and web, worker and beat start after it, connecting as the application role without the owner's credentials."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
APP_SERVICES = ("web", "worker", "beat")


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


def env_files(service: dict) -> list[str]:
    files = service.get("env_file", [])
    return [files] if isinstance(files, str) else list(files)


def example(name: str) -> dict[str, str]:
    """The settings an example env file sets (commented-out lines are defaults, not settings)."""
    lines = (DOCKER / name).read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_migrate_runs_once_as_the_owner_after_postgres_is_healthy():
    migrate = compose()["services"]["migrate"]
    assert env_files(migrate) == [".env", "owner.env"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    command = " ".join(migrate["command"])
    # Migrations first, then the grants refreshed over the tables they created.
    assert command.index("manage.py migrate") < command.index("manage.py create_database_roles")


def test_web_worker_and_beat_start_after_migrate_without_the_owners_credentials():
    services = compose()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert env_files(service) == [".env"], name
        assert "owner.env" not in str(service), name
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}, name
        assert "migrate" not in str(service.get("command", "")), f"{name} must not migrate as the application role"
        assert "CUSTODY_DATABASE_OWNER_URL" not in str(service.get("environment", {})), name


def test_postgres_takes_its_password_from_the_owner_file():
    postgres = compose()["services"]["postgres"]
    assert env_files(postgres) == ["owner.env"]
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["environment"]["POSTGRES_USER"] == "custody"


def test_the_example_files_give_the_application_and_the_owner_different_roles_on_one_database():
    application, owner_file = example(".env.example"), example("owner.env.example")
    assert "CUSTODY_DATABASE_OWNER_URL" not in application and "POSTGRES_PASSWORD" not in application
    app = dj_database_url.parse(application["DATABASE_URL"])
    owner = dj_database_url.parse(owner_file["CUSTODY_DATABASE_OWNER_URL"])
    postgres = compose()["services"]["postgres"]["environment"]
    assert (owner["USER"], owner["PASSWORD"]) == (postgres["POSTGRES_USER"], owner_file["POSTGRES_PASSWORD"])
    assert (app["HOST"], app["PORT"], app["NAME"]) == (owner["HOST"], owner["PORT"], owner["NAME"])
    assert app["NAME"] == postgres["POSTGRES_DB"]
    assert app["USER"] != owner["USER"] and app["PASSWORD"] != owner["PASSWORD"]
