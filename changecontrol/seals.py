"""Seals: the sha256 of a regulated record's canonical content, written into the audit event of each change to it.

DESIGN §6 "Sealed records". The audit chain proves which events happened; a seal ties a record's row to the event
that last changed it, so a row rewritten behind Custody's back (by whoever owns the database) no longer matches and
`verify_audit` names it — record type, human ID and field. PostgreSQL triggers refuse most rewrites outright
(`common.table_guards.GuardTable`); seals catch the rest, including rewrites made with triggers disabled.

A model is sealed when it declares what its seal covers:

- `SEALED_FIELDS`: its own columns (field names; a foreign key seals the id it holds);
- `SEALED_RELATED` (optional): relations whose content belongs to the record — a many-to-many seals the sorted ids
  it holds, a reverse foreign key (the facts parsed from an evidence) seals every column of every related row,
  except the columns the related model lists in `SEAL_EXCLUDE` (derived values another record decides);
- `SEALED_WHEN` (optional): a Q naming the rows that must carry a seal (a release only once frozen).

The core never imports the apps above it: sealed models are found in the app registry.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models
from django.db.models.expressions import RawSQL

from changecontrol.models import record_type
from common.canonical import canonical_json

# A field's digest is shortened: it only has to tell which field changed, the record's digest proves that one did.
FIELD_DIGEST_LENGTH = 16
# Records re-hashed per query when verifying.
BATCH = 2000


def sealed_models() -> list[type[models.Model]]:
    """Every model that declares a seal, in a stable order."""
    return sorted(
        (model for model in apps.get_models() if getattr(model, "SEALED_FIELDS", None)),
        key=lambda model: record_type(model),
    )


def model_for_type(type_name: str) -> type[models.Model] | None:
    return next((model for model in sealed_models() if record_type(model) == type_name), None)


@dataclass(frozen=True)
class Layout:
    """How one sealed model's content is read: its columns and its related collections."""

    model: type[models.Model]
    fields: tuple[str, ...]  # field names, in SEALED_FIELDS order
    columns: tuple[str, ...]  # the matching attnames (foreign keys: "<name>_id")
    many: tuple[tuple[str, str], ...]  # (relation name, through-model column naming the record) for many-to-many
    rows: tuple[tuple[str, type[models.Model], str, tuple[str, ...]], ...]  # (name, model, fk column, columns)

    @property
    def content_names(self) -> tuple[str, ...]:
        return self.fields + tuple(name for name, _ in self.many) + tuple(name for name, *_ in self.rows)


def layout_of(model: type[models.Model]) -> Layout:
    fields = tuple(model.SEALED_FIELDS)
    columns = tuple(model._meta.get_field(name).attname for name in fields)
    many, rows = [], []
    for name in getattr(model, "SEALED_RELATED", ()):
        field = model._meta.get_field(name)
        if field.many_to_many and not field.auto_created:
            many.append((name, field.m2m_field_name()))
        else:  # a reverse foreign key or one-to-one: the related model's rows belong to this record
            related = field.related_model
            excluded = set(getattr(related, "SEAL_EXCLUDE", ()))
            related_columns = tuple(
                f.attname for f in related._meta.concrete_fields if f.name not in excluded and f.attname != "id"
            )
            rows.append((name, related, field.field.attname, ("id", *related_columns)))
    return Layout(model=model, fields=fields, columns=columns, many=tuple(many), rows=tuple(rows))


def _field_digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()[:FIELD_DIGEST_LENGTH]


def _rows_digest(rows: Iterable[tuple]) -> str:
    """One digest over related rows ordered by id: streamed, so ten thousand test results cost no list."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical_json(list(row)))
        digest.update(b"\n")
    return digest.hexdigest()


def seal_from_content(content: dict[str, Any]) -> dict[str, Any]:
    """The seal of a record's content: the sha256 of its canonical form and a short digest per field."""
    return {
        "sha256": hashlib.sha256(canonical_json(content)).hexdigest(),
        "fields": {name: _field_digest(value) for name, value in content.items()},
    }


def seal_of(obj: models.Model) -> dict[str, Any]:
    """The seal of one record as the database holds it now (read back, so what is sealed is what is stored)."""
    model = type(obj)
    ((_, content),) = contents(layout_of(model), [obj.pk])
    return {"type": record_type(model), "id": obj.pk, **seal_from_content(content)}


def _any_of(pks: list[int]) -> Any:
    """The right side of an `__in` lookup for a batch of keys. On PostgreSQL one array parameter: the driver splits
    a statement at every placeholder, and 2,000 of them cost more than reading the rows (a full verify_audit)."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (list(pks),))
    return list(pks)


def contents(layout: Layout, pks: list[int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(pk, content) of these records, in pk order; content maps each sealed name to its value."""
    model = layout.model
    values = model._base_manager.filter(pk__in=_any_of(pks)).order_by("pk").values_list("pk", *layout.columns)
    records = {row[0]: dict(zip(layout.fields, row[1:], strict=True)) for row in values}
    for name, column in layout.many:
        through = model._meta.get_field(name).remote_field.through
        target = model._meta.get_field(name).m2m_reverse_field_name()
        held: dict[int, list[int]] = defaultdict(list)
        pairs = through.objects.filter(**{f"{column}__in": _any_of(list(records))}).values_list(
            f"{column}_id", f"{target}_id"
        )
        for owner, target_id in pairs:
            held[owner].append(target_id)
        for pk, content in records.items():
            content[name] = sorted(held.get(pk, []))
    for name, related, fk, columns in layout.rows:
        grouped: dict[int, list[tuple]] = defaultdict(list)
        for row in (
            related._base_manager.filter(**{f"{fk}__in": _any_of(list(records))})
            .order_by(fk, "id")
            .values_list(fk, *columns)
        ):
            grouped[row[0]].append(row[1:])
        for pk, content in records.items():
            content[name] = _rows_digest(grouped.get(pk, ()))
    yield from records.items()


def must_be_sealed(model: type[models.Model]) -> models.QuerySet:
    """The rows of a sealed model that must carry a seal (all of them, unless the model says when)."""
    condition = getattr(model, "SEALED_WHEN", None)
    queryset = model._base_manager.all()
    return queryset.filter(condition) if condition is not None else queryset


def human_id(model: type[models.Model], pk: int) -> str:
    """How people name a record in a finding (its human ID when it still exists)."""
    obj = model._base_manager.filter(pk=pk).first()
    if obj is None:
        return f"{record_type(model)} #{pk}"
    return str(getattr(obj, "human_id", "") or obj)


def changed_fields(sealed: dict[str, Any], content: dict[str, Any]) -> list[str]:
    """The names whose value differs from what the seal recorded (every name, for a seal without field digests)."""
    recorded = sealed.get("fields") or {}
    now = seal_from_content(content)["fields"]
    names = sorted(set(recorded) | set(now))
    return [name for name in names if recorded.get(name) != now.get(name)] or names
