"""The audit trail: append hash-chained events in the caller's transaction, verify the chain, checkpoint it.

DESIGN §6: every write to a controlled record adds an event in the same database transaction. Appends are
serialised by locking the single AuditChainHead row, so two concurrent writers can never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from changecontrol import seals
from changecontrol.models import AuditChainHead, AuditCheckpoint, AuditEvent, User, checkpoint_statement, record_type
from common import request_context
from common.canonical import canonical_json, jsonable

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR_NAME = "Custody (system)"

# Apps above the core react to what it records without the core importing them (DESIGN §3): each registers a
# listener in its AppConfig.ready(). A listener runs inside the writer's transaction, right after the event is
# appended, so whatever it writes (an alert) exists if and only if the fact it reacts to is committed.
_listeners: list[Callable[[AuditEvent], None]] = []


def listen(listener: Callable[[AuditEvent], None]) -> None:
    """Call `listener(event)` after every event appended from now on (once, however often it registers)."""
    if listener not in _listeners:
        _listeners.append(listener)


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """Every field of an event that its hash covers (all but the hash itself).

    `seals` is covered when the event carries any: events recorded before seals existed hash as they always did."""
    fields = {
        "id": event.pk,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "product_key": event.product_key,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_human_id": event.object_human_id,
        "object_version": event.object_version,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "request_id": event.request_id,
        "client_address": event.client_address,
        "via_token": event.via_token,
        "previous_hash": event.previous_hash,
    }
    if event.seals is not None:
        fields["seals"] = event.seals
    return fields


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical_json(event_fields(event))).hexdigest()


def _describe(obj: Any) -> tuple[str, str, str, str, str]:
    """(object_type, object_id, human id, version, product key) of a record, however it is shaped."""
    if obj is None:
        return "", "", "", "", ""
    object_type = record_type(obj)
    human_id = getattr(obj, "human_id", None) or str(obj)
    version = getattr(obj, "content_version", None) or getattr(obj, "version", None) or ""
    product = getattr(obj, "product", None)
    if product is None and obj._meta.model_name == "product":
        product = obj
    product_key = getattr(product, "key", "") if product is not None else ""
    return object_type, str(obj.pk), str(human_id)[:80], str(version), product_key


def record(
    *,
    actor: User | None,
    action: str,
    obj: Any = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    product_key: str | None = None,
    object_human_id: str | None = None,
    seal: Iterable[Any] = (),
) -> AuditEvent:
    """Append one event to the chain inside the current transaction (callers are atomic; this insists).

    `seal`: the sealed records this event changed (changecontrol.seals), read back from the database after the
    caller's writes, so the event holds the seal of exactly what is stored."""
    with transaction.atomic():
        # 1. Serialise appends: the chain head row is the lock every writer queues on.
        head = _locked_head()
        object_type, object_id, human_id, version, obj_product_key = _describe(obj)
        context = request_context.current()
        event = AuditEvent(
            at=timezone.now(),
            actor=actor if actor is not None and actor.pk else None,
            actor_name=actor.printed_name if actor is not None else SYSTEM_ACTOR_NAME,
            action=action,
            product_key=product_key if product_key is not None else obj_product_key,
            object_type=object_type,
            object_id=object_id,
            object_human_id=object_human_id or human_id,
            object_version=version,
            before=jsonable(before),
            after=jsonable(after),
            reason=reason,
            request_id=context.request_id,
            client_address=context.client_address,
            via_token=context.via_token,
            previous_hash=head.last_hash,
            seals=[seals.seal_of(record) for record in seal] or None,
        )
        # 2. The id is part of the hash, so take it from the sequence before hashing.
        event.pk = _next_event_id(head)
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        # 3. Move the head.
        AuditChainHead.objects.filter(pk=head.pk).update(last_event_id=event.pk, last_hash=event.hash)
        # 4. Let the apps above react, in this same transaction.
        for listener in _listeners:
            listener(event)
        return event


def _locked_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(singleton=True).first()
    if head is None:
        AuditChainHead.objects.get_or_create(singleton=True, defaults={"last_hash": GENESIS_HASH})
        head = AuditChainHead.objects.select_for_update().get(singleton=True)
    return head


def _next_event_id(head: AuditChainHead) -> int:
    # Ids are dense and follow the chain: with the head locked nobody else can take the next one.
    return head.last_event_id + 1


# The columns event_fields() covers, in the order _iter_rows() reads them (the hash itself comes last).
_ROW_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "product_key",
    "object_type",
    "object_id",
    "object_human_id",
    "object_version",
    "before",
    "after",
    "reason",
    "request_id",
    "client_address",
    "via_token",
    "previous_hash",
    "seals",
)


def _iter_rows(batch_size: int = 10000, *, after_id: int = 0) -> Iterator[tuple]:
    """Events as plain tuples, keyset-paginated: verifying 100,000 events must not build 100,000 models."""
    if connection.vendor == "postgresql":
        yield from _iter_rows_postgresql(batch_size, after_id)
        return
    last_id = after_id
    queryset = AuditEvent.objects.order_by("pk").values_list(*_ROW_COLUMNS, "hash")
    while True:
        batch = list(queryset.filter(pk__gt=last_id)[:batch_size])
        if not batch:
            return
        for row in batch:
            yield (row[0], row[1].astimezone(UTC).isoformat(timespec="microseconds"), *row[2:])
        last_id = batch[-1][0]


# PostgreSQL formats the timestamp exactly as event_fields() does (UTC, microseconds, "+00:00") and hands
# the JSON columns over as text: the verifier then skips the ORM's per-value converters (3× faster).
_POSTGRES_ROWS = """
    SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), actor_id, actor_name, action,
           product_key, object_type, object_id, object_human_id, object_version, before::text, after::text, reason,
           request_id, client_address, via_token, previous_hash, seals::text, hash
    FROM changecontrol_auditevent WHERE id > %s ORDER BY id LIMIT %s
"""


def _iter_rows_postgresql(batch_size: int, after_id: int) -> Iterator[tuple]:
    loads = json.loads
    last_id = after_id
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_POSTGRES_ROWS, [last_id, batch_size])
            batch = cursor.fetchall()
        if not batch:
            return
        for row in batch:
            before, after, sealed = row[10], row[11], row[17]
            yield (
                *row[:10],
                None if before is None else loads(before),
                None if after is None else loads(after),
                *row[12:17],
                None if sealed is None else loads(sealed),
                row[18],
            )
        last_id = batch[-1][0]


def stored_events(*, after_id: int = 0) -> Iterator[tuple[dict[str, Any], str]]:
    """(the dict event_fields() builds, the stored hash) of each event after `after_id`, in chain order."""
    columns = _ROW_COLUMNS
    for row in _iter_rows(after_id=after_id):
        fields = dict(zip(columns, row[:-1], strict=True))
        if fields["seals"] is None:
            del fields["seals"]
        yield fields, row[-1]


def checkpoint_needed() -> bool:
    """Whether events came after the latest checkpoint (its own event aside): one more would cover them."""
    head = AuditChainHead.objects.filter(singleton=True).values_list("last_event_id", flat=True).first() or 0
    latest = AuditCheckpoint.objects.order_by("-event_id").values_list("event_id", flat=True).first()
    return head > (latest + 1 if latest is not None else 0)


@transaction.atomic
def checkpoint_create() -> AuditCheckpoint | None:
    """Sign the current chain head with Custody's key (Celery beat runs this hourly; also on demand)."""
    from common.keys import keyring

    head = _locked_head()
    if head.last_event_id == 0:
        return None
    created_at = timezone.now()
    statement = checkpoint_statement(event_id=head.last_event_id, event_hash=head.last_hash, created_at=created_at)
    signed = keyring().sign(statement)
    checkpoint = AuditCheckpoint.objects.create(
        event_id=head.last_event_id,
        event_hash=head.last_hash,
        event_count=head.last_event_id,
        created_at=created_at,
        key_id=signed.key_id,
        signature=signed.signature_b64,
    )
    record(
        actor=None,
        action="audit.checkpoint_signed",
        obj=checkpoint,
        after={
            "checkpoint": checkpoint.pk,
            "event": head.last_event_id,
            "hash": head.last_hash,
            "key_id": signed.key_id,
        },
        seal=[checkpoint],
    )
    # Published outside the database once committed (changecontrol.witnesses): a task, so a witness that is down
    # is retried without holding the chain head.
    transaction.on_commit(lambda: _publish_to_witnesses(checkpoint.pk))
    return checkpoint


def _publish_to_witnesses(checkpoint_id: int) -> None:
    from django.conf import settings

    from changecontrol.tasks import checkpoint_publish

    if settings.CUSTODY_AUDIT_WITNESSES:
        checkpoint_publish.delay(checkpoint_id)


def database_refuses_rewrites() -> bool:
    return connection.vendor == "postgresql"
