"""Release versions are constrained in the database by the rule the service applies, after a data step that names
every existing row that breaks it (and refuses to add the constraint over them)."""

from __future__ import annotations

import importlib

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from approvals.models import RELEASE_VERSION_PATTERN, Release

version_migration = importlib.import_module("approvals.migrations.0008_release_version_valid")


def _insert(product, user, version) -> Release:
    # Straight to the database, past the service that checks versions (as rows written before the rule were).
    return Release.objects.create(product=product, version=version, created_by=user)


@pytest.mark.parametrize("version", ["2025.03/hotfix", "new", ".hidden", "1.0\n", "7.2.4 ", "v1é", ""])
def test_the_database_refuses_a_version_the_service_refuses(product, cast, version):
    with pytest.raises(IntegrityError, match="approvals_release_version_valid"), transaction.atomic():
        _insert(product, cast["rory"], version)


@pytest.mark.parametrize("version", ["7.2.4", "1.0.0-rc.1", "1.0.0+build.5", "2025.03.1", "R_12", "newer"])
def test_the_database_takes_every_version_the_service_takes(product, cast, version):
    assert _insert(product, cast["rory"], version).pk


def test_the_migration_froze_the_rule_the_model_holds():
    assert version_migration.VERSION.pattern == RELEASE_VERSION_PATTERN
    assert version_migration.RESERVED == ("new",)


def _migrate(*target):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # this test's deferred checks, before the ALTER TABLE
    call_command("migrate", *target, verbosity=0)


def test_the_data_step_names_each_existing_row_that_breaks_the_rule_and_refuses_the_constraint(product, cast):
    _migrate("approvals", "0007")
    try:
        bad = _insert(product, cast["rory"], "2025.03/hotfix")
        reserved = _insert(product, cast["rory"], "new")
        _insert(product, cast["rory"], "7.2.5")
        with pytest.raises(version_migration.ReleaseVersionsInvalid) as refused:
            _migrate("approvals", "0008")
        message = str(refused.value)
        assert "2 existing release(s)" in message
        assert f"release id {bad.pk}: product 'rsd', version '2025.03/hotfix'" in message
        assert f"release id {reserved.pk}: product 'rsd', version 'new'" in message
        assert "7.2.5" not in message
        # Fixed (the releases are not frozen, so they may still change), the migration adds the constraint.
        Release.objects.filter(pk=bad.pk).update(version="2025.03-hotfix")
        Release.objects.filter(pk=reserved.pk).update(version="new-1")
    finally:
        _migrate("approvals")
    with connection.cursor() as cursor:
        names = connection.introspection.get_constraints(cursor, Release._meta.db_table)
    assert "approvals_release_version_valid" in names
