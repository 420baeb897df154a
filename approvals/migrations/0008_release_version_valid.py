"""Release versions are constrained in the database by the rule the service applies (approvals.releases).

Rows written before the rule may break it: the data step names each one (product, version, id) and refuses to go
on, so the constraint is never added over them. Fix those releases (a version is part of URLs: give it a version
of letters, digits, '.', '-', '_' and '+', starting with a letter or digit, and not 'new'), then migrate again.
"""

import logging
import re

from django.db import migrations, models

# Frozen here as it stood when this migration was written (migrations are history; the model holds today's rule).
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-]*")
RESERVED = ("new",)

logger = logging.getLogger("custody.migrations")


class ReleaseVersionsInvalid(RuntimeError):
    """Existing releases break the version rule: the constraint cannot be added until they are fixed."""


def breaking_rows(releases) -> list[str]:
    """Each release whose version the rule refuses, named as a person would find it."""
    return [
        f"release id {pk}: product {product_key!r}, version {version!r}"
        for pk, product_key, version in releases
        if not VERSION.fullmatch(version) or version in RESERVED
    ]


def refuse_breaking_versions(apps, schema_editor):
    Release = apps.get_model("approvals", "Release")
    rows = Release.objects.order_by("pk").values_list("pk", "product__key", "version")
    breaking = breaking_rows(rows.iterator())
    if breaking:
        message = (
            f"{len(breaking)} existing release(s) have a version the service refuses, so the database constraint "
            "approvals_release_version_valid cannot be added. Give each a version of letters, digits, '.', '-', '_' "
            "and '+', starting with a letter or digit and not 'new', then run migrate again:\n  "
            + "\n  ".join(breaking)
        )
        logger.error(message)
        raise ReleaseVersionsInvalid(message)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0007_accepted_failures")]

    operations = [
        migrations.RunPython(refuse_breaking_versions, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="release",
            constraint=models.CheckConstraint(
                condition=models.Q(("version__regex", "\\A[A-Za-z0-9][A-Za-z0-9._+\\-]*\\Z"))
                & ~models.Q(("version__in", ("new",))),
                name="approvals_release_version_valid",
            ),
        ),
    ]
