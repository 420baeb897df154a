"""Migration operations that make PostgreSQL refuse rewrites of a sealed table (DESIGN §6, "Sealed records").

`GuardTable` installs one trigger function per table: TRUNCATE is refused; DELETE is refused unless the table names
when it is legal (the facts of an evidence being processed again); UPDATE may change only the columns the table names
(`mutable`), and only along its legal transitions (`transition`, a condition on OLD and NEW). Every other column is
compared whole (`to_jsonb(row)` minus the mutable ones), so a column added later is sealed by default.
`GuardMembership` refuses changes to a many-to-many table once its owner is sealed (a frozen release's artifacts).

Written by hand rather than with django-pgtrigger: its `pgtrigger.ignore` works through a session variable that any
connection may set, which would let the application's own database role step around the seals. Here only a role
that may ALTER the table (the owner, never the application: docs/operations.md) can disable a trigger, and what such
a role rewrites is still named by `verify_audit` (changecontrol.seals).

PostgreSQL only: the embedded SQLite default relies on the seals alone. Migrations import this module: it is frozen
history and must keep working as written.
"""

from __future__ import annotations

from django.db.migrations.operations.base import Operation


def _quoted_list(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in names)


class GuardTable(Operation):
    """Refuse TRUNCATE, DELETE and UPDATE on `table` except the legal transitions it names."""

    reversible = True
    reduces_to_sql = True

    def __init__(
        self,
        *,
        table: str,
        mutable: tuple[str, ...] = (),
        transition: str = "",
        delete_when: str = "",
        sealed_when: str = "",
        rule: str = "",
    ):
        self.table = table
        self.mutable = tuple(mutable)
        self.transition = transition
        self.delete_when = delete_when
        self.sealed_when = sealed_when
        self.rule = rule or "sealed records are never rewritten"

    def deconstruct(self):
        kwargs = {
            "table": self.table,
            "mutable": self.mutable,
            "transition": self.transition,
            "delete_when": self.delete_when,
            "sealed_when": self.sealed_when,
            "rule": self.rule,
        }
        return self.__class__.__qualname__, [], kwargs

    def state_forwards(self, app_label, state):
        pass  # triggers are not part of Django's model state

    @property
    def function(self) -> str:
        return f"custody_guard_{self.table}"

    def forward_sql(self) -> str:
        name, table = self.function, self.table
        mutable = f"ARRAY[{_quoted_list(self.mutable)}]::text[]"
        # A message a DBA reads in psql: which table, which row, what may change, and the rule.
        may_change = ", ".join(self.mutable) if self.mutable else "nothing"
        refuse = "USING ERRCODE = 'insufficient_privilege'"
        unsealed = f"IF NOT ({self.sealed_when}) THEN RETURN COALESCE(NEW, OLD); END IF;" if self.sealed_when else ""
        delete = f"IF {self.delete_when} THEN RETURN OLD; END IF;" if self.delete_when else ""
        transition = (
            f"""IF NOT ({self.transition}) THEN
            RAISE EXCEPTION '{table} is sealed: row % may not make this change ({self.rule})', OLD.id {refuse};
        END IF;"""
            if self.transition
            else ""
        )
        return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '{table} is sealed: TRUNCATE is refused ({self.rule})' {refuse};
    END IF;
    {unsealed}
    IF TG_OP = 'DELETE' THEN
        {delete}
        RAISE EXCEPTION '{table} is sealed: DELETE of row % is refused ({self.rule})', OLD.id {refuse};
    END IF;
    IF (to_jsonb(NEW) - {mutable}) IS DISTINCT FROM (to_jsonb(OLD) - {mutable}) THEN
        RAISE EXCEPTION '{table} is sealed: row % may change only {may_change} ({self.rule})', OLD.id {refuse};
    END IF;
    {transition}
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {name} BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();
CREATE TRIGGER {name}_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""

    def backward_sql(self) -> str:
        return f"""
DROP TRIGGER IF EXISTS {self.function}_truncate ON {self.table};
DROP TRIGGER IF EXISTS {self.function} ON {self.table};
DROP FUNCTION IF EXISTS {self.function}();
"""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(self.forward_sql(), params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(self.backward_sql(), params=None)

    def describe(self):
        return f"Seal table {self.table} ({self.rule})"


class GuardMembership(GuardTable):
    """Refuse INSERT, UPDATE, DELETE and TRUNCATE on a many-to-many `table` while its owner row is sealed."""

    def __init__(self, *, table: str, owner_table: str, owner_column: str, sealed_when: str, rule: str = ""):
        super().__init__(table=table, sealed_when=sealed_when, rule=rule)
        self.owner_table, self.owner_column = owner_table, owner_column

    def deconstruct(self):
        kwargs = {
            "table": self.table,
            "owner_table": self.owner_table,
            "owner_column": self.owner_column,
            "sealed_when": self.sealed_when,
            "rule": self.rule,
        }
        return self.__class__.__qualname__, [], kwargs

    def forward_sql(self) -> str:
        name, table, column = self.function, self.table, self.owner_column
        refuse = "USING ERRCODE = 'insufficient_privilege'"
        # Names and conditions come from migrations, never from input.
        return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
DECLARE
    owner_id bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '{table} is sealed: TRUNCATE is refused ({self.rule})' {refuse};
    END IF;
    owner_id := CASE WHEN TG_OP = 'DELETE' THEN OLD.{column} ELSE NEW.{column} END;
    IF EXISTS (SELECT 1 FROM {self.owner_table} AS owner WHERE owner.id = owner_id AND ({self.sealed_when}))
       OR (TG_OP = 'UPDATE' AND EXISTS (
           SELECT 1 FROM {self.owner_table} AS owner WHERE owner.id = OLD.{column} AND ({self.sealed_when}))) THEN
        RAISE EXCEPTION '{table} is sealed: % refused for row % ({self.rule})', TG_OP, owner_id {refuse};
    END IF;
    RETURN COALESCE(NEW, OLD);
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {name} BEFORE INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();
CREATE TRIGGER {name}_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""  # noqa: S608
