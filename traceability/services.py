"""Writes of traceability: items and their versions, typed links, suspect links, imports, CR links, baselines.

Each service is one transaction that locks, checks, writes and audits (STYLE.md). What makes a new version is
decided by `ItemRecord.content_fingerprint()` from the format layer, so an edit in the browser and a re-import of
the same content agree: title, text, hazard fields and attributes make a version; status and comments do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from changecontrol import audit
from changecontrol.models import ChangeRequest, Product, Role, User
from changecontrol.roles import has_role
from changecontrol.services import change_request_content_changed, change_request_lock_editable
from common.errors import Conflict, NotPermitted, ValidationFailed
from traceability.formats import (
    HAZARD_FIELDS,
    LINK_DIRECTIONS,
    UNVERSIONED_ATTRIBUTES,
    ItemFormatError,
    ItemRecord,
    LinkRecord,
    read_csv,
    read_json,
    read_reqif,
    write_csv,
    write_json,
)
from traceability.models import ChangeRequestItem, TraceItem, TraceItemVersion, TraceLink

# Auditors read; everyone else who works on the product may write the design history.
ITEM_EDITOR_ROLES = (Role.ENGINEER, Role.RELEASE_MANAGER, Role.QUALITY, Role.SECURITY, Role.PRODUCT, Role.ADMIN)
KIND_PREFIXES = {"requirement": "REQ-", "hazard": "HAZ-", "risk_control": "RC-"}
IMPORT_FORMATS = {"csv": read_csv, "json": read_json, "reqif": read_reqif}
EXPORT_FORMATS = {"csv": (write_csv, "text/csv; charset=utf-8"), "json": (write_json, "application/json")}
MAX_IMPORT_BYTES = 20 * 1024 * 1024
# An ID in a commit message or CR text: letters, a hyphen, digits (REQ-017, HAZ-3, RC-5, CR-42, LOREM-818).
REFERENCE_PATTERN = re.compile(r"\b([A-Za-z][A-Za-z0-9_]{0,30}-\d{1,9})\b")
CONTENT_FIELDS = ("title", "text", *HAZARD_FIELDS, "attributes")


def allowed_links_sentence() -> str:
    return "; ".join(
        f"{kind} ({source.replace('_', ' ')} → {target.replace('_', ' ')})"
        for kind, (source, target) in LINK_DIRECTIONS.items()
    )


def _require_editor(actor: User, product: Product) -> None:
    # Service accounts reach here only through a token already scoped to the product and to requirements:write.
    if actor.is_service_account or has_role(actor, product, *ITEM_EDITOR_ROLES):
        return
    raise NotPermitted(f"you hold no role on {product.key} that may change requirements, hazards or risk controls")


def record_of(item: TraceItem) -> ItemRecord:
    """The item as the format layer sees it (its links are not content and are left out)."""
    return ItemRecord(
        identifier=item.identifier,
        kind=item.kind,
        title=item.title,
        text=item.text,
        status=item.status,
        attributes=tuple(sorted((str(k), str(v)) for k, v in (item.attributes or {}).items())),
        **{name: getattr(item, name) for name in HAZARD_FIELDS},
    )


def _snapshot(item: TraceItem) -> dict[str, Any]:
    snapshot = {
        "kind": item.kind,
        "title": item.title,
        "text": item.text,
        "status": item.status,
        "attributes": item.attributes,
    }
    if item.kind == TraceItem.Kind.HAZARD:
        snapshot.update({name: getattr(item, name) for name in HAZARD_FIELDS})
    return snapshot


def _unversioned(attributes: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k.strip().lower() in UNVERSIONED_ATTRIBUTES}


def _version_row(item: TraceItem, *, actor: User, reason: str) -> TraceItemVersion:
    return TraceItemVersion.objects.create(
        item=item,
        version=item.version,
        title=item.title,
        text=item.text,
        status=item.status,
        attributes=item.attributes,
        hazard={name: getattr(item, name) for name in HAZARD_FIELDS} if item.kind == TraceItem.Kind.HAZARD else {},
        fingerprint=item.fingerprint,
        reason=reason,
        created_by=actor,
        created_at=item.version_created_at,
    )


def _next_identifier(product: Product, kind: str) -> str:
    prefix = KIND_PREFIXES[kind]
    numbers = [
        int(identifier[len(prefix) :])
        for identifier in TraceItem.objects.filter(product=product, identifier__istartswith=prefix).values_list(
            "identifier", flat=True
        )
        if identifier[len(prefix) :].isdigit()
    ]
    return f"{prefix}{max(numbers, default=0) + 1:03d}"


def _check_identifier(identifier: str) -> str:
    identifier = identifier.strip()
    if not identifier or len(identifier) > 120 or "/" in identifier or any(c.isspace() for c in identifier):
        raise ValidationFailed(f"{identifier!r} is not a usable ID: 1–120 characters, no spaces or slashes (REQ-017)")
    return identifier


def _clean_fields(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - {"title", "text", "status", "attributes", *HAZARD_FIELDS}
    if unknown:
        raise ValidationFailed(f"unknown fields: {', '.join(sorted(unknown))}")
    if kind != TraceItem.Kind.HAZARD and any(fields.get(name) for name in HAZARD_FIELDS):
        raise ValidationFailed(
            f"only hazards carry the ISO 14971 fields ({', '.join(HAZARD_FIELDS)}); this is a {kind}"
        )
    cleaned = {key: str(value).strip() for key, value in fields.items() if key != "attributes"}
    if "status" in cleaned:
        cleaned["status"] = cleaned["status"].lower()
    if "attributes" in fields:
        attributes = fields["attributes"] or {}
        if not isinstance(attributes, dict):
            raise ValidationFailed("attributes must be an object of name → text")
        cleaned["attributes"] = {str(k).strip(): str(v).strip() for k, v in attributes.items() if str(v).strip()}
    if "title" in cleaned and not cleaned["title"]:
        raise ValidationFailed("an item needs a title", errors={"title": ["This field is required."]})
    return cleaned


# ---------------------------------------------------------------- items


@transaction.atomic
def item_create(
    *, product: Product, actor: User, kind: str, title: str, identifier: str = "", reason: str = "", **fields: Any
) -> TraceItem:
    """Create a requirement, hazard or risk control at version 1 (an ID is assigned when none is given)."""
    _require_editor(actor, product)
    if kind not in TraceItem.Kind.values:
        raise ValidationFailed(f"kind {kind!r} is not one of {', '.join(TraceItem.Kind.values)}")
    Product.objects.select_for_update().get(pk=product.pk)  # serialises ID assignment per product
    identifier = _check_identifier(identifier) if identifier else _next_identifier(product, kind)
    if TraceItem.objects.filter(product=product, identifier=identifier).exists():
        raise Conflict(f"{identifier} already exists in {product.key}; edit it to make a new version")
    cleaned = _clean_fields(kind, {"title": title, **fields})
    return _create(
        product=product, actor=actor, kind=kind, identifier=identifier, fields=cleaned, reason=reason or "created"
    )


def _create(
    *, product: Product, actor: User, kind: str, identifier: str, fields: dict[str, Any], reason: str
) -> TraceItem:
    now = timezone.now()
    item = TraceItem(
        product=product,
        kind=kind,
        identifier=identifier,
        created_at=now,
        updated_at=now,
        version_created_at=now,
        **fields,
    )
    item.fingerprint = record_of(item).content_fingerprint()
    item.save()
    _version_row(item, actor=actor, reason=reason)
    audit.record(actor=actor, action="trace_item.created", obj=item, after=_snapshot(item), reason=reason)
    return item


@transaction.atomic
def item_edit(*, item: TraceItem, actor: User, reason: str = "", **fields: Any) -> tuple[TraceItem, bool]:
    """Edit an item; returns (item, versioned). A content change makes a new version and marks links suspect."""
    item = TraceItem.objects.select_for_update(of=("self",)).select_related("product").get(pk=item.pk)
    _require_editor(actor, item.product)
    cleaned = _clean_fields(item.kind, fields)
    item, outcome = _apply(item=item, actor=actor, fields=cleaned, reason=reason)
    return item, outcome == "versioned"


def _apply(*, item: TraceItem, actor: User, fields: dict[str, Any], reason: str) -> tuple[TraceItem, str]:
    """Write new values onto a locked item: "versioned", "updated" (status/comment only) or "unchanged"."""
    before = _snapshot(item)
    for name, value in fields.items():
        setattr(item, name, value)
    after = _snapshot(item)
    changed = sorted(key for key in after if after[key] != before[key])
    if not changed:
        return item, "unchanged"
    fingerprint = record_of(item).content_fingerprint()
    versioned = fingerprint != item.fingerprint
    now = timezone.now()
    item.updated_at = now
    if versioned:
        item.version += 1
        item.fingerprint = fingerprint
        item.version_created_at = now
    item.save()
    changes = {"before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}}
    if versioned:
        _version_row(item, actor=actor, reason=reason)
        audit.record(actor=actor, action="trace_item.versioned", obj=item, reason=reason, **changes)
        _mark_downstream_suspect(item=item, actor=actor)
    else:
        # Status and comments are not content (no new version), but they are still controlled: audited.
        audit.record(actor=actor, action="trace_item.updated", obj=item, reason=reason, **changes)
    return item, "versioned" if versioned else "updated"


def _mark_downstream_suspect(*, item: TraceItem, actor: User) -> int:
    """Every link whose upstream end is this item must be reviewed again (IEC 62304 §7.4, §8.2)."""
    downstream = TraceLink.objects.filter(
        Q(kind=TraceLink.Kind.IMPLEMENTS, source=item) | (~Q(kind=TraceLink.Kind.IMPLEMENTS) & Q(target=item))
    ).select_related("source", "target")
    reason = f"{item.identifier} changed to version {item.version}"
    marked = 0
    for link in downstream:
        link.suspect, link.suspect_since, link.suspect_reason = True, timezone.now(), reason
        link.cleared_by, link.cleared_at, link.cleared_comment = None, None, ""
        link.save(
            update_fields=["suspect", "suspect_since", "suspect_reason", "cleared_by", "cleared_at", "cleared_comment"]
        )
        audit.record(
            actor=actor, action="trace_link.suspect_marked", obj=link, reason=reason, product_key=item.product.key
        )
        marked += 1
    return marked


# ---------------------------------------------------------------- links


def _check_link_kind(*, kind: str, source: TraceItem, target: TraceItem) -> None:
    expected = LINK_DIRECTIONS.get(kind)
    if expected is None or (source.kind, target.kind) != expected:
        pair = f"from a {source.get_kind_display().lower()} to a {target.get_kind_display().lower()}"
        fitting = [k for k, kinds in LINK_DIRECTIONS.items() if kinds == (source.kind, target.kind)]
        hint = f"{pair} only {', '.join(fitting)} is allowed" if fitting else f"no link may go {pair}"
        raise ValidationFailed(
            f"a '{kind}' link from {source.identifier} to {target.identifier} is not allowed: {hint}. "
            f"Allowed kinds: {allowed_links_sentence()}",
            allowed=list(LINK_DIRECTIONS),
        )


@transaction.atomic
def trace_link_create(*, source: TraceItem, target: TraceItem, kind: str, actor: User) -> TraceLink:
    """Link two items of one product with a kind the ISO 14971 chain allows (else 400 naming the allowed ones)."""
    _require_editor(actor, source.product)
    if source.product_id != target.product_id:
        raise ValidationFailed(f"{source.identifier} and {target.identifier} belong to different products")
    if source.pk == target.pk:
        raise ValidationFailed(f"{source.identifier} cannot link to itself")
    _check_link_kind(kind=kind, source=source, target=target)
    existing = TraceLink.objects.filter(source=source, target=target, kind=kind).first()
    if existing is not None:
        return existing
    link = TraceLink.objects.create(product=source.product, source=source, target=target, kind=kind, created_by=actor)
    audit.record(
        actor=actor,
        action="trace_link.created",
        obj=link,
        after={"source": source.identifier, "kind": kind, "target": target.identifier},
    )
    return link


@transaction.atomic
def trace_link_clear_suspect(*, link: TraceLink, actor: User, comment: str) -> TraceLink:
    """A person confirms the downstream item still holds after the upstream change; the comment says why."""
    link = (
        TraceLink.objects.select_for_update(of=("self",)).select_related("product", "source", "target").get(pk=link.pk)
    )
    _require_editor(actor, link.product)
    if actor.is_service_account:
        raise NotPermitted("clearing a suspect link is a judgement: a person must do it, not a service account")
    if not comment.strip():
        raise ValidationFailed("say why the link still holds: clearing a suspect link needs a comment")
    if not link.suspect:
        raise Conflict(f"the link {link.human_id} is not suspect, so there is nothing to clear")
    before = {"suspect": True, "suspect_reason": link.suspect_reason}
    link.suspect = False
    link.cleared_by, link.cleared_at, link.cleared_comment = actor, timezone.now(), comment.strip()
    link.save(update_fields=["suspect", "cleared_by", "cleared_at", "cleared_comment"])
    audit.record(
        actor=actor,
        action="trace_link.suspect_cleared",
        obj=link,
        before=before,
        after={"suspect": False},
        reason=comment.strip(),
    )
    return link


def references_in(text: str) -> list[str]:
    """IDs mentioned in free text, upper-cased, in order of appearance, once each."""
    seen: dict[str, None] = {}
    for match in REFERENCE_PATTERN.finditer(text or ""):
        seen.setdefault(match.group(1).upper(), None)
    return list(seen)


@transaction.atomic
def change_request_items_link(
    *, change_request: ChangeRequest, actor: User, identifiers: list[str]
) -> dict[str, list[str]]:
    """State which items a CR affects; unknown IDs are reported back, never silently dropped.

    The items a CR covers are part of what its reviewers approve: like any content edit, linking more is refused
    (409) once the CR is implemented, closed, rejected or withdrawn, and after a signature it resets the approval
    (a new content version; the signatures no longer count, with the reason)."""
    change_request = change_request_lock_editable(change_request)
    _require_editor(actor, change_request.product)
    wanted = {identifier.strip().upper(): identifier.strip() for identifier in identifiers if identifier.strip()}
    items = {
        item.identifier.upper(): item
        for item in TraceItem.objects.filter(product=change_request.product)
        if item.identifier.upper() in wanted
    }
    existing = dict(
        ChangeRequestItem.objects.filter(change_request=change_request).values_list("item_id", "item__identifier")
    )
    linked = []
    for _key, item in sorted(items.items()):
        if item.pk not in existing:
            ChangeRequestItem.objects.create(change_request=change_request, item=item, created_by=actor)
            linked.append(item.identifier)
    if linked:
        change_request_content_changed(
            change_request=change_request,
            actor=actor,
            changed={"items"},
            action="change_request.items_linked",
            before={"items": sorted(existing.values())},
            after={"items": sorted([*existing.values(), *linked]), "linked": linked},
        )
    return {"linked": linked, "unknown": sorted(wanted[key] for key in wanted if key not in items)}


# ---------------------------------------------------------------- import and export


@dataclass
class ImportReport:
    """What an import did, item by item (the API returns it as is)."""

    created: list[str] = field(default_factory=list)
    versioned: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    links_created: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source_format: str = ""
    tool: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _fields_of(record: ItemRecord) -> dict[str, Any]:
    fields = {
        "title": record.title,
        "text": record.text,
        "status": record.status,
        "attributes": dict(record.attributes),
    }
    if record.kind == TraceItem.Kind.HAZARD:
        fields.update(record.hazard_fields())
    return fields


@transaction.atomic
def items_import(*, product: Product, actor: User, format: str, data: bytes, filename: str = "") -> ImportReport:  # noqa: A002
    """Import a CSV, JSON or ReqIF file: new items, new versions where content changed, nothing else."""
    _require_editor(actor, product)
    reader = IMPORT_FORMATS.get(format)
    if reader is None:
        raise ValidationFailed(f"format {format!r} is not one of {', '.join(IMPORT_FORMATS)}")
    if len(data) > MAX_IMPORT_BYTES:
        from common.errors import TooLarge

        raise TooLarge(f"the file is {len(data)} bytes; the import limit is {MAX_IMPORT_BYTES} bytes")
    try:
        parsed = reader(data)
    except ItemFormatError as error:
        raise ValidationFailed(f"nothing was imported: {error}", errors=list(error.problems)) from None
    # 1. One import at a time per product, so two CI jobs cannot both create the same ID.
    Product.objects.select_for_update().get(pk=product.pk)
    report = ImportReport(
        warnings=list(parsed.warnings), source_format=parsed.source_format or format, tool=parsed.tool
    )
    existing = {item.identifier: item for item in TraceItem.objects.select_for_update().filter(product=product)}
    reason = f"imported from {filename or format} ({format})"
    accepted: list[ItemRecord] = []
    # 2. Items: create, version or leave alone.
    for record in parsed.records:
        item = existing.get(record.identifier)
        if item is None:
            item = _create(
                product=product,
                actor=actor,
                kind=record.kind,
                identifier=record.identifier,
                fields=_fields_of(record),
                reason=reason,
            )
            item.product = product
            existing[record.identifier] = item
            report.created.append(record.identifier)
        elif item.kind != record.kind:
            report.refused.append(
                {
                    "id": record.identifier,
                    "reason": f"{record.identifier} is a {item.kind} in Custody; the file says {record.kind}",
                }
            )
            continue
        else:
            item.product = product
            fields = _fields_of(record)
            # Comments not in the file are kept: a tool that does not export them should not erase them.
            fields["attributes"] = {**_unversioned(item.attributes), **fields["attributes"]}
            _, outcome = _apply(item=item, actor=actor, fields=fields, reason=reason)
            if outcome != "unchanged":
                getattr(report, outcome).append(record.identifier)
        accepted.append(record)
    # 3. Links, once every item of the file exists; links are added, never removed by an import.
    current = {
        (s, t, k) for s, t, k in TraceLink.objects.filter(product=product).values_list("source_id", "target_id", "kind")
    }
    for record in accepted:
        source = existing[record.identifier]
        for link in record.links:
            target = existing.get(link.target)
            if target is None:
                report.refused.append(
                    {
                        "id": record.identifier,
                        "reason": f"'{link.kind}' link to {link.target}: no such item in {product.key}",
                    }
                )
                continue
            if (source.pk, target.pk, link.kind) in current:
                continue
            try:
                _check_link_kind(kind=link.kind, source=source, target=target)
            except ValidationFailed as refusal:
                report.refused.append({"id": record.identifier, "reason": refusal.detail})
                continue
            created = TraceLink.objects.create(
                product=product, source=source, target=target, kind=link.kind, created_by=actor
            )
            audit.record(
                actor=actor,
                action="trace_link.created",
                obj=created,
                reason=reason,
                after={"source": source.identifier, "kind": link.kind, "target": target.identifier},
            )
            current.add((source.pk, target.pk, link.kind))
            report.links_created.append(f"{source.identifier} {link.kind} {target.identifier}")
    touched = set(report.created) | set(report.versioned) | set(report.updated)
    report.unchanged = [r.identifier for r in accepted if r.identifier not in touched]
    audit.record(
        actor=actor,
        action="trace_items.imported",
        obj=product,
        object_human_id=f"{product.key} items",
        reason=reason,
        after={k: len(v) for k, v in report.as_dict().items() if isinstance(v, list)},
    )
    return report


def items_export(*, product: Product, format: str, kinds: tuple[str, ...] = ()) -> tuple[bytes, str]:  # noqa: A002
    """The product's items with their links, in a format that re-imports unchanged."""
    writer, content_type = EXPORT_FORMATS.get(format, (None, ""))
    if writer is None:
        raise ValidationFailed(f"format {format!r} is not one of {', '.join(EXPORT_FORMATS)}")
    items = TraceItem.objects.filter(product=product)
    if kinds:
        items = items.filter(kind__in=kinds)
    links: dict[int, list[LinkRecord]] = {}
    for source_id, kind, target in TraceLink.objects.filter(product=product).values_list(
        "source_id", "kind", "target__identifier"
    ):
        links.setdefault(source_id, []).append(LinkRecord(kind=kind, target=target))
    records = []
    for item in items:
        record = record_of(item)
        records.append(ItemRecord(**{**record.__dict__, "links": tuple(sorted(links.get(item.pk, [])))}))
    return writer(records), content_type
