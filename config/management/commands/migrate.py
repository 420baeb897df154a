"""`migrate`, connected as the owner of the schema when CUSTODY_DATABASE_OWNER_URL is set (docs/operations.md)."""

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from config.database_roles import OWNER_ALIAS, default_connects_as


class Command(migrate.Command):
    help = migrate.Command.help + " Connects as the owner role (CUSTODY_DATABASE_OWNER_URL) when it is set."

    def handle(self, *args, **options):
        if options["database"] not in (DEFAULT_DB_ALIAS, OWNER_ALIAS) or OWNER_ALIAS not in settings.DATABASES:
            return super().handle(*args, **options)
        # The whole run speaks as the owner through the `default` alias, rather than `migrate --database owner`:
        # data migrations written before the split (changecontrol 0002, approvals 0003) use `Model.objects`, which
        # goes through `default`. Under --database owner they would write as the application role, on a second
        # connection outside the migration's transaction: on a fresh database changecontrol 0002 is refused (the
        # application role has no grant yet), and approvals 0003 would wait on the lock its own ALTER TABLE holds.
        # So `--database owner` is taken to mean the same, and done this way.
        options["database"] = DEFAULT_DB_ALIAS
        with default_connects_as(connections.settings[OWNER_ALIAS]):
            return super().handle(*args, **options)
