"""What was decided, for the packet, the release notes and the bundle (DESIGN §6: records are what was decided).

The status answer of a promotion is stored as an `approvals.Decision` (DEC-n) whenever it changes, with the gates,
approvals and reasons it gave, the policy version it used and the moment it was evaluated; each deployment keeps
the decision it acted on. The printed record is built from those rows only — a later policy, new evidence or the
passing of time must never change what a packet says was decided. `promotion_records` picks, per promotion, the
decision that counted and lists the others as its history; `evaluated_again_today` is the one place that evaluates
afresh, and only to show, apart from the record, where today's answer differs from the recorded one.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby
from typing import Any

from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils import timezone

from common.times import parse_timestamp
from reports.packets import _utc

GATE_ORDER = {"fail": 0, "missing": 1, "pass": 2}


def _sorted_gates(gates: list[dict]) -> list[dict]:
    """Blocking first, failures first within: what stopped (or could have stopped) a promotion reads first."""
    return sorted(gates, key=lambda g: (not g.get("blocking"), GATE_ORDER.get(g.get("status"), 3), g.get("id", "")))


def _policy_block(policy) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {"name": policy.document.name, "version": policy.version, "sha256": policy.sha256}


def _approvals(approvals: dict) -> dict[str, Any]:
    """A recorded approvals state with its signers' times printed the way the packet prints every time."""
    return {
        "required": list(approvals.get("required") or []),
        "missing": list(approvals.get("missing") or []),
        "notes": list(approvals.get("notes") or []),
        "signers": [
            {
                "printed_name": s.get("printed_name", ""),
                "role": s.get("role", ""),
                "signed_at": _utc(parse_timestamp(s.get("signed_at"))),
            }
            for s in approvals.get("signers") or []
        ],
    }


def _evaluation(rows: list) -> dict[str, Any]:
    """One evaluation as recorded: the Decision rows one status answer stored, one per digest of the release."""
    first = rows[0]
    return {
        "id": first.human_id,
        "ids": [row.human_id for row in rows],
        "row_ids": [row.pk for row in rows],
        "artifacts": [row.artifact.name for row in rows],
        "decision": first.decision,
        "gates": _sorted_gates(first.gates or []),
        "approvals": _approvals(first.approvals or {}),
        "reasons": list(first.reasons or []),
        "policy": _policy_block(first.policy_version),
        "evaluated_at": _utc(first.evaluated_at),
        "evaluated_at_value": first.evaluated_at,
        "promotion_state": first.promotion_state or "",
        "answer_sha256": first.answer_sha256,
    }


def _recorded_evaluations(promotions) -> dict[int, list[dict[str, Any]]]:
    """Each promotion's recorded evaluations, oldest first, in one query.

    One status answer stores a Decision per digest of the release, all with the same moment, policy and answer:
    they are one evaluation, printed once with every DEC id. `inputs` (the full facts, for replay) stay unread.
    """
    from approvals.models import Decision

    rows = (
        Decision.objects.filter(promotion__in=[p.pk for p in promotions])
        .select_related("policy_version", "artifact")
        .defer("inputs")
        # The promotion's state as the evaluation saw it: which transaction stored the row.
        .annotate(promotion_state=KT("inputs__promotion__state"))
        .order_by("promotion_id", "evaluated_at", "pk")
    )
    evaluations: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (promotion_id, _, _, _), group in groupby(
        rows, key=lambda d: (d.promotion_id, d.evaluated_at, d.policy_version_id, d.answer_sha256)
    ):
        evaluations[promotion_id].append(_evaluation(list(group)))
    return evaluations


def _latest_at_or_before(evaluations, moment):
    earlier = [e for e in evaluations if moment is None or e["evaluated_at_value"] <= moment]
    return earlier[-1] if earlier else None


def _first_seeing(evaluations, state: str, since):
    """The first evaluation since `since` whose recorded inputs saw the promotion in `state`: the one stored by the
    transaction that moved it there (approving or rejecting sets `decided_at`, then evaluates the promotion again and
    stores the answer). `since` skips an earlier approval of a promotion that new evidence reopened."""
    return next(
        (
            e
            for e in evaluations
            if e["promotion_state"] == state and (since is None or e["evaluated_at_value"] >= since)
        ),
        None,
    )


def _deciding_deployment(promotion, evaluations, deployments):
    """The deployment that moved the promotion to deployed: the last authorised normal one into its environment,
    recorded no later than the promotion's `deployed_at`, that acted on one of its decisions."""
    ids = {pk for e in evaluations for pk in e["row_ids"]}
    acting = [
        d
        for d in deployments
        if d.decision_id in ids
        and d.authorised
        and d.kind == "normal"
        and d.environment_id == promotion.environment_id
        and (promotion.deployed_at is None or d.deployed_at <= promotion.deployed_at)
    ]
    return acting[-1] if acting else None


def _decision_that_counted(promotion, evaluations, deployments) -> tuple[dict | None, str]:
    """The recorded evaluation an auditor asks about, and a sentence saying why it is that one.

    Deployed: the decision the deployment acted on (stored with the deployment). Approved — and expired after
    approval, or deployed without a deployment naming its decision: the one recorded when it was approved. Rejected:
    the one recorded when it was rejected. A decision identical to the one before is not stored again, so where no
    row saw the new state, the one standing at `decided_at` counts. Reopened after approval (its approval no longer
    stands), not decided yet, or superseded before it was: the latest recorded.
    """
    state = promotion.state
    if not evaluations:
        return None, "no decision was recorded for this promotion"
    if state == "deployed":
        deployment = _deciding_deployment(promotion, evaluations, deployments)
        if deployment is not None:
            chosen = next(e for e in evaluations if deployment.decision_id in e["row_ids"])
            return (
                chosen,
                f"the decision {deployment.human_id} acted on when it deployed, {_utc(deployment.deployed_at)}",
            )
    if state in ("approved", "expired", "deployed", "rejected"):
        seen = "rejected" if state == "rejected" else "approved"
        chosen = _first_seeing(evaluations, seen, promotion.decided_at) or _latest_at_or_before(
            evaluations, promotion.decided_at
        )
        if chosen is not None:
            after = {
                "expired": " (it expired before it was deployed)",
                "deployed": " (no recorded deployment names the decision it acted on)",
            }.get(state, "")
            return chosen, f"recorded when it was {seen}, {_utc(promotion.decided_at) or 'time not recorded'}{after}"
    if state == "superseded":
        return evaluations[-1], "the latest recorded before a later promotion superseded it"
    if state == "reopened":
        return evaluations[-1], (
            f"the latest recorded: it was approved, then reopened {_utc(promotion.reopened_at) or ''} because "
            f"{promotion.reopen_reason}"
        )
    return evaluations[-1], "the latest recorded; the promotion is not decided yet"


def promotion_records(promotions, deployments) -> list[dict[str, Any]]:
    """Per promotion: the recorded decision that counted (with its gates, approvals, reasons and policy), why that
    one, and the promotion's other recorded evaluations as a compact history."""
    evaluations = _recorded_evaluations(promotions)
    records = []
    for promotion in promotions:
        history = evaluations.get(promotion.pk, [])
        chosen, basis = _decision_that_counted(promotion, history, deployments)
        records.append(
            {
                "promotion": promotion,
                "id": promotion.human_id,
                "environment": promotion.environment.key,
                "state": promotion.get_state_display(),
                "requested_at": _utc(promotion.requested_at),
                "recorded": chosen,
                "basis": basis,
                "history": [{**e, "counted": e is chosen} for e in history] if len(history) > 1 else [],
            }
        )
    return records


def _gate_state(gate: dict) -> tuple[str, bool]:
    return gate.get("status", ""), bool(gate.get("blocking"))


def _gate_text(gate: dict | None, *, absent: str) -> str:
    if gate is None:
        return absent
    return f"{gate.get('status', '')}, {'blocking' if gate.get('blocking') else 'informational'}"


def _gate_differences(recorded: list[dict], today: list[dict]) -> list[dict[str, Any]]:
    """Gates whose status or weight differs, and gates only one of the two policies has, by gate id."""
    before = {g.get("id"): g for g in recorded}
    now = {g.get("id"): g for g in today}
    rows = []
    for gate_id in [*before, *(i for i in now if i not in before)]:
        old, new = before.get(gate_id), now.get(gate_id)
        if old and new and _gate_state(old) == _gate_state(new):
            continue
        rows.append(
            {
                "id": gate_id,
                "kind": (new or old).get("kind", ""),
                "recorded": _gate_text(old, absent="not in the policy then"),
                "today": _gate_text(new, absent="not in today's policy"),
                "detail": (new or {}).get("detail", ""),
            }
        )
    return rows


def evaluated_again_today(records, *, product) -> dict[str, Any]:
    """Each promotion judged now, under the policy in force today, compared with its recorded decision.

    For information only, and printed apart: the recorded decision is the record. A difference names the recorded
    and today's outcome and every gate that differs; promotions that evaluate the same are counted, not listed.
    """
    from approvals import status
    from changecontrol.services import active_policy

    now = timezone.now()
    policy = active_policy(product)
    result = {"evaluated_at": _utc(now), "policy": _policy_block(policy), "differences": [], "same": 0}
    if policy is None or not records:
        return result
    for record in records:
        recorded = record["recorded"]
        try:
            evaluation = status.evaluate(record["promotion"], at=now)
        except Exception as error:  # noqa: BLE001 - a packet must render even when today's policy cannot judge
            result["differences"].append({"record": record, "error": str(error), "gates": []})
            continue
        answer = evaluation.answer
        gates = _gate_differences(recorded["gates"] if recorded else [], _sorted_gates(answer["gates"]))
        outcome_differs = recorded is None or recorded["decision"] != answer["decision"]
        if not outcome_differs and not gates:
            result["same"] += 1
            continue
        result["differences"].append(
            {
                "record": record,
                "today": answer["decision"],
                "outcome_differs": outcome_differs,
                "gates": gates,
                "reasons": answer["reasons"],
                "policy_changed": bool(
                    recorded and recorded["policy"] and recorded["policy"]["sha256"] != policy.sha256
                ),
            }
        )
    return result


def release_decision_rows(release):
    """Every Decision about the release: those of its promotions and those of its digests (a status answer asked
    for a digest before any promotion of this release), oldest first."""
    from approvals.models import Decision

    # A subquery, not a join through the release's artifacts: an artifact in several releases must not repeat a row.
    return (
        Decision.objects.filter(Q(promotion__release=release) | Q(artifact_id__in=release.artifacts.values("pk")))
        .select_related("artifact", "environment", "promotion", "policy_version")
        .defer("inputs")
        .order_by("pk")
    )
