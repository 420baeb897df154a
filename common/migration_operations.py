"""A migration operation for models that moved to another app, keeping their tables and their rows.

Moving a model is state-only (`SeparateDatabaseAndState`): the table keeps its name (`db_table`). What the database
still says about the old app is fixed here, so the database matches the new state exactly:

- constraint and partial-index names carry the app label (`%(app_label)s_%(class)s_<rule>`): renamed in place on
  PostgreSQL; on SQLite only indexes have names Django reads back, so a partial unique index is re-created under its
  new name (the table itself, and the triggers on it, are never rebuilt);
- content types (and so the permissions attached to them) follow the model to its new app.

Migrations import this module: it is frozen history and must keep working as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.migrations.operations.base import Operation


@dataclass(frozen=True)
class Renamed:
    """One database object named after the old app: a constraint, or a partial unique index."""

    table: str
    old: str
    new: str
    is_index: bool = False


class AdoptMovedModels(Operation):
    """The database side of moving `models` from `from_app` to `to_app`; the state side is a CreateModel/DeleteModel
    pair wrapped in `SeparateDatabaseAndState`."""

    reversible = True
    reduces_to_sql = False

    def __init__(self, *, from_app: str, to_app: str, models: list[str], renamed: list[Renamed]):
        self.from_app, self.to_app = from_app, to_app
        self.models = [name.lower() for name in models]
        self.renamed = list(renamed)

    def deconstruct(self):
        kwargs = {"from_app": self.from_app, "to_app": self.to_app, "models": self.models, "renamed": self.renamed}
        return self.__class__.__qualname__, [], kwargs

    def state_forwards(self, app_label, state):
        pass  # the state moves by the CreateModel/DeleteModel pair

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        for item in self.renamed:
            self._rename(schema_editor, item.table, item.old, item.new, is_index=item.is_index)
        self._move_content_types(from_state.apps, schema_editor, self.from_app, self.to_app)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        for item in reversed(self.renamed):
            self._rename(schema_editor, item.table, item.new, item.old, is_index=item.is_index)
        self._move_content_types(from_state.apps, schema_editor, self.to_app, self.from_app)

    def describe(self):
        return f"Hand the tables of {', '.join(self.models)} from {self.from_app} to {self.to_app}"

    @staticmethod
    def _rename(schema_editor, table: str, old: str, new: str, *, is_index: bool) -> None:
        quote = schema_editor.quote_name
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            if is_index:
                schema_editor.execute(f"ALTER INDEX {quote(old)} RENAME TO {quote(new)}")
            else:
                schema_editor.execute(f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}")
        elif vendor == "sqlite" and is_index:
            with schema_editor.connection.cursor() as cursor:
                cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s", [old])
                row = cursor.fetchone()
            if row is None:
                return
            schema_editor.execute(f"DROP INDEX {quote(old)}")
            schema_editor.execute(row[0].replace(quote(old), quote(new), 1))

    def _move_content_types(self, apps, schema_editor, source: str, target: str) -> None:
        content_type = apps.get_model("contenttypes", "ContentType")
        rows = content_type.objects.using(schema_editor.connection.alias)
        for model in self.models:
            if not rows.filter(app_label=target, model=model).exists():
                rows.filter(app_label=source, model=model).update(app_label=target)
