"""A release's scope: what it is judged against, recorded with its baseline when it froze (issue: a release is judged
against its own scope). Requirements added after the freeze, or new versions made after it, belong to a later release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from changecontrol.models import Product
from traceability.models import TraceBaseline

# Items that are not requirements to verify: retired ones (the headings requirement tools export are told apart by
# their ReqIF object type, in the matrix).
RETIRED_STATUSES = frozenset({"obsolete", "deleted", "retired", "rejected", "withdrawn"})


@dataclass(frozen=True)
class ScopedItem:
    """One item of a release's scope, as it read when the release froze."""

    identifier: str
    kind: str
    version: int
    title: str
    status: str


@dataclass(frozen=True)
class ReleaseScope:
    """What a release is judged against (IEC 62304 §5.7-5.8, §8): the requirements, hazards and risk controls in
    force when it froze, at the versions they had then, plus any its change requests link; and the links between
    them as they were."""

    release_version: str
    frozen_at: datetime
    items: dict[str, ScopedItem]  # by identifier, upper case (IDs match case-insensitively, as in the matrix)
    links: tuple[tuple[str, str, str, bool], ...]  # (source ID, kind, target ID, suspect)

    def item(self, identifier: str) -> ScopedItem | None:
        return self.items.get(identifier.upper())

    def entries(self) -> list[ScopedItem]:
        """The items by kind (requirements, hazards, risk controls), then identifier."""
        order = {"requirement": 0, "hazard": 1, "risk_control": 2}
        return sorted(self.items.values(), key=lambda item: (order.get(item.kind, 3), item.identifier))

    def counts(self) -> dict[str, int]:
        """How many items of each kind the scope holds."""
        counts: dict[str, int] = {}
        for item in self.items.values():
            counts[item.kind] = counts.get(item.kind, 0) + 1
        return counts


def in_force(status: str) -> bool:
    """Whether an item with this status is in force (retired ones, and the headings tools export, are not)."""
    return (status or "").strip().lower() not in RETIRED_STATUSES


def release_scope(*, product: Product, release_version: str) -> ReleaseScope | None:
    """The scope recorded with a release's baseline; None when the release has no baseline (not frozen yet).

    Baselines taken before scopes were recorded hold every item at its version: the scope is those in force."""
    baseline = TraceBaseline.objects.filter(product=product, release_version=release_version).first()
    if baseline is None:
        return None
    content = baseline.content or {}
    entries = content.get("scope")
    if entries is None:
        entries = [item for item in content.get("items", []) if in_force(item.get("status", ""))]
    items = {
        entry["id"].upper(): ScopedItem(
            identifier=entry["id"],
            kind=entry["kind"],
            version=int(entry["version"]),
            title=entry.get("title", ""),
            status=entry.get("status", ""),
        )
        for entry in entries
    }
    links = tuple(
        (link["source"], link["kind"], link["target"], bool(link.get("suspect"))) for link in content.get("links", [])
    )
    return ReleaseScope(release_version=release_version, frozen_at=baseline.taken_at, items=items, links=links)
