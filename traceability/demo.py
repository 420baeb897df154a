# ruff: noqa: E501 - the demo texts read better as one line each
"""Demo traceability for `rsd` (called by seed_demo): requirements, hazards, risk controls and their links.

Written as the design-history file of a sepsis risk-score dashboard would read. Seeding goes through the
import service, so running it twice changes nothing (the import is idempotent).
"""

from __future__ import annotations

import json

from changecontrol.models import ChangeRequest
from traceability import services as items
from traceability.models import TraceItem

REQUIREMENTS = [
    (
        "REQ-001",
        "Compute the sepsis risk score",
        "The service shall compute a sepsis risk score (0–1) for every admitted adult patient from the latest vital signs and lab results.",
    ),
    (
        "REQ-002",
        "Refresh the score on new observations",
        "The score shall be recomputed within 60 seconds of a new vital-sign or lab observation arriving from the EHR.",
    ),
    (
        "REQ-003",
        "Show the score on the ward view",
        "The ward view shall show each patient's current score, its band (green, amber, red) and the time it was computed.",
    ),
    (
        "REQ-004",
        "Flag amber and red scores",
        "Scores at or above the amber threshold shall be flagged; the thresholds come from the clinical configuration.",
    ),
    (
        "REQ-005",
        "Show the contributing factors",
        "For a flagged score the dashboard shall list the three observations that contributed most to it.",
    ),
    (
        "REQ-006",
        "Mark stale scores",
        "A score computed from observations older than 4 hours shall be shown greyed out with the text 'stale — check observations'.",
    ),
    (
        "REQ-007",
        "Refuse to score with missing inputs",
        "When heart rate, respiratory rate, temperature or lactate is missing, no score shall be shown; the missing inputs shall be named instead.",
    ),
    (
        "REQ-008",
        "Match patients by two identifiers",
        "Observations shall be attached to a patient only when both the MRN and the encounter number match.",
    ),
    (
        "REQ-009",
        "Record who acknowledged an alert",
        "Acknowledging a flagged score shall record the clinician, the time and an optional note.",
    ),
    (
        "REQ-010",
        "Keep an audit of score changes",
        "Every computed score shall be kept with its inputs and model version for 10 years.",
    ),
    (
        "REQ-011",
        "Restrict access to the care team",
        "Only clinicians assigned to the patient's ward shall see the patient's score.",
    ),
    (
        "REQ-012",
        "Show the model version",
        "The dashboard footer shall show the scoring model version and its validation date.",
    ),
]
HAZARDS = [
    (
        "HAZ-1",
        "Deterioration missed",
        "A falsely low score is shown for a deteriorating patient",
        "Delayed escalation and treatment of sepsis",
        "Serious",
        "Occasional",
        "High",
        "Low",
        "Acceptable after controls",
    ),
    (
        "HAZ-2",
        "Score shown for the wrong patient",
        "Observations are attached to another patient with a similar name",
        "Inappropriate treatment or missed escalation",
        "Serious",
        "Remote",
        "Medium",
        "Low",
        "Acceptable after controls",
    ),
    (
        "HAZ-3",
        "Outdated score trusted",
        "A score computed from old observations is read as current",
        "Delayed escalation",
        "Minor",
        "Probable",
        "Medium",
        "Low",
        "Acceptable after controls",
    ),
]
RISK_CONTROLS = [
    (
        "RC-1",
        "Refuse incomplete inputs",
        "No score is computed when a required input is missing; the missing inputs are shown.",
        ["HAZ-1"],
        ["REQ-007"],
    ),
    (
        "RC-2",
        "Two-identifier patient matching",
        "Observations match a patient only on MRN and encounter number.",
        ["HAZ-2"],
        ["REQ-008"],
    ),
    (
        "RC-3",
        "Staleness marking",
        "Scores from observations older than 4 hours are visibly marked stale.",
        ["HAZ-3"],
        ["REQ-006"],
    ),
    (
        "RC-4",
        "Timely recomputation",
        "Scores are recomputed within 60 seconds of new observations.",
        ["HAZ-1", "HAZ-3"],
        ["REQ-002", "REQ-004"],
    ),
]
DERIVED = {"REQ-004": ["REQ-001"], "REQ-005": ["REQ-004"], "REQ-006": ["REQ-003"], "REQ-002": ["REQ-001"]}


def document() -> bytes:
    records = []
    for identifier, title, text in REQUIREMENTS:
        links = [{"kind": "derives_from", "target": parent} for parent in DERIVED.get(identifier, [])]
        records.append(
            {
                "id": identifier,
                "kind": "requirement",
                "title": title,
                "text": text,
                "status": "approved",
                "attributes": {"Verification method": "test"},
                "links": links,
            }
        )
    for identifier, title, situation, harm, severity, probability, initial, residual, acceptability in HAZARDS:
        records.append(
            {
                "id": identifier,
                "kind": "hazard",
                "title": title,
                "hazardous_situation": situation,
                "harm": harm,
                "severity": severity,
                "probability": probability,
                "initial_risk": initial,
                "residual_risk": residual,
                "acceptability": acceptability,
                "status": "approved",
            }
        )
    for identifier, title, text, hazards, requirements in RISK_CONTROLS:
        links = [{"kind": "mitigates", "target": h} for h in hazards]
        links += [{"kind": "implements", "target": r} for r in requirements]
        records.append(
            {
                "id": identifier,
                "kind": "risk_control",
                "title": title,
                "text": text,
                "status": "approved",
                "links": links,
            }
        )
    return json.dumps({"tool": "Custody demo", "items": records}).encode()


def seed(context) -> None:
    """The design history of rsd; the config demo runs it before the change requests that name its items."""
    product = context.products["rsd"]
    if TraceItem.objects.filter(product=product).exists():
        return  # seeded before: a second run writes nothing, not even an audit event of an unchanged import
    author = context.people["emma"]
    report = items.items_import(product=product, actor=author, format="json", data=document(), filename="rsd-dhf.json")
    context.stdout.write(f"  traceability: {len(report.created)} items created, {len(report.links_created)} links")


def link_change_request(context, change_request: ChangeRequest) -> None:
    """Link a new draft CR to the items its text names: what a CR covers is stated before anyone signs it."""
    found = items.references_in(f"{change_request.affected_items} {change_request.title}")
    wanted = [ref for ref in found if not ref.startswith("CR-")]
    if wanted and change_request.product.key == "rsd":
        items.change_request_items_link(change_request=change_request, actor=context.people["ravi"], identifiers=wanted)
