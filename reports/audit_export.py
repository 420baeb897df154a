"""Audit-trail export (issue 7, item 5): the events of any object or date range as CSV, JSON and PDF.

The rows are exactly what `GET /api/v1/audit-events` returns (`AuditEventOutput` over `selectors.audit_events`),
so every format says the same thing. The PDF adds what an auditor holding only paper needs to trust it: each
event's hash and the hash it links to, whether the exported events link to one another without a gap, and
Custody's latest signed checkpoint of the chain head with its signature checked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from changecontrol import selectors
from changecontrol.models import ApiToken, AuditCheckpoint, User
from common.errors import TooLarge

# A PDF of more events than this is a book nobody reads: narrow the range or take the CSV/JSON.
MAX_PDF_EVENTS = 5000
MAX_EXPORT_EVENTS = 100_000


def _utc(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def audit_export_rows(
    *, user: User, token: ApiToken | None = None, object_human_id: str = "", since=None, until=None, limit: int
) -> list[dict[str, Any]]:
    """The events the caller may see, oldest first (a trail reads forward), as the API serialises them."""
    from changecontrol.api import AuditEventOutput

    events = selectors.audit_events(
        user=user, token=token, object_human_id=object_human_id, since=since, until=until
    ).order_by("id")
    count = events.count()
    if count > limit:
        raise TooLarge(
            f"{count} audit events match; at most {limit} fit in this format — narrow the object or date range",
            matched=count,
            limit=limit,
        )
    return list(AuditEventOutput(events, many=True).data)


def audit_export_json(rows: list[dict[str, Any]], *, scope: dict[str, str]) -> bytes:
    body = {"scope": scope, "exported_at": timezone.now().isoformat(), "count": len(rows), "events": rows}
    return json.dumps(body, indent=2, sort_keys=True, default=str).encode()


def chain_links(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with `linked`: True when its previous_hash is the hash of the row before it in this export.

    An export of one object's events is a sparse sample of the chain, so a row that does not link to the one
    above it is not evidence of tampering; `custody verify_audit` walks the full chain. A row that does link
    shows the two were adjacent in the chain.
    """
    previous = None
    out = []
    for row in rows:
        out.append({**row, "linked": previous is not None and row["previous_hash"] == previous})
        previous = row["hash"]
    return out


def latest_checkpoint() -> dict[str, Any] | None:
    """Custody's newest signed checkpoint, with its signature checked against Custody's keyring now."""
    from common.keys import keyring

    checkpoint = AuditCheckpoint.objects.order_by("-id").first()
    if checkpoint is None:
        return None
    return {
        "id": checkpoint.pk,
        "event_id": checkpoint.event_id,
        "event_hash": checkpoint.event_hash,
        "created_at": _utc(checkpoint.created_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "statement": checkpoint.statement().decode(),
        "signature_valid": keyring().verify(checkpoint.statement(), checkpoint.signed_blob()),
    }


def audit_export_context(rows: list[dict[str, Any]], *, scope: dict[str, str], generated_by: User) -> dict[str, Any]:
    checkpoint = latest_checkpoint()
    last_id = rows[-1]["id"] if rows else 0
    linked_rows = chain_links(rows)
    return {
        "title": "Audit trail " + (scope.get("object") or "export"),
        "scope": scope,
        "events": linked_rows,
        "count": len(rows),
        "generated_at": _utc(timezone.now()),
        "generated_by": generated_by.printed_name,
        "custody_version": getattr(settings, "CUSTODY_VERSION", ""),
        "checkpoint": checkpoint,
        # The checkpoint vouches for these events only when it signs a head at or after the last of them.
        "checkpoint_covers": bool(checkpoint and checkpoint["event_id"] >= last_id),
        "adjacent_links": sum(1 for row in linked_rows if row["linked"]),
    }


def render_pdf(template_name: str, context: dict[str, Any]) -> bytes:
    """A WeasyPrint PDF of a `templates/pdf/` template, in the packet's print design (packet.css)."""
    import weasyprint

    css_path = Path(settings.BASE_DIR) / "templates" / "pdf" / "packet.css"
    html = render_to_string(template_name, context)
    stylesheet = weasyprint.CSS(string=css_path.read_text(encoding="utf-8"))
    return weasyprint.HTML(string=html, base_url=str(css_path.parent)).write_pdf(stylesheets=[stylesheet])


def audit_export_pdf(rows: list[dict[str, Any]], *, scope: dict[str, str], generated_by: User) -> bytes:
    context = audit_export_context(rows, scope=scope, generated_by=generated_by)
    for event in context["events"]:
        event["at_utc"] = _utc(datetime.fromisoformat(event["at"].replace("Z", "+00:00")))
    return render_pdf("pdf/audit_trail.html", context)
