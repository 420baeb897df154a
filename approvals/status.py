"""The status answer (DESIGN §7): may this digest go to this environment? allowed | blocked | pending.

Assembled by selectors (the release's facts, the promotion's signatures) and decided by the pure gate functions
(`gates.decide`); cached under a stamp of every input. Nothing here writes to the database — reads never write:
whatever an input changes (a promotion approved when its last signature or report lands, a decision stored) is done
by the service that received the input (`approvals.services`), in its own transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from approvals import gates, selectors
from approvals.models import Decision, Promotion
from changecontrol.models import Environment, PolicyVersion
from changecontrol.services import active_policy
from common.canonical import canonical_sha256, jsonable
from common.errors import InvalidState, NotFound
from common.times import parse_timestamp
from evidence.models import Artifact

# The stamp covers every input and expiry bounds the lifetime, so the timeout only limits memory use.
CACHE_SECONDS = 600


def _signature_inputs(promotion: Promotion) -> list[dict]:
    return [
        {
            "signer": s.signer.username,
            "printed_name": s.printed_name,
            "role": s.role,
            "meaning": s.meaning,
            "signed_at": s.signed_at.isoformat(),
            "expires_at": s.expires_at.isoformat() if s.expires_at else None,
            "invalidated": s.invalidated_at is not None,
            "policy_version": s.policy_version.version if s.policy_version_id else None,
            "evidence_sha256": (s.content or {}).get("evidence_sha256"),
        }
        for s in selectors.promotion_signatures(promotion).select_related("policy_version")
    ]


def status_inputs(*, promotion: Promotion | None, environment: Environment, policy: PolicyVersion) -> dict[str, Any]:
    """Everything `gates.decide` reads, as JSON (stored with each Decision for replay)."""
    if promotion is None:
        return {"promotion": None, "policy_version": policy.version}
    rule = policy.document.environment(environment.key)
    facts = selectors.release_facts(
        release=promotion.release,
        environment_key=environment.key,
        after=rule.after,
        trace_scope=policy.document.traceability.scope,
    )
    return jsonable(
        {
            "promotion": {
                "id": promotion.human_id,
                "state": promotion.state,
                "tier": promotion.tier,
                "rejection_reason": promotion.rejection_reason,
                "requested_by": promotion.requester.username,
                # Only a reopened promotion carries it, so earlier inputs (and their replays) read as before.
                **({"reopen_reason": promotion.reopen_reason} if promotion.state == Promotion.State.REOPENED else {}),
            },
            "facts": facts,
            "signatures": _signature_inputs(promotion),
            "policy_version": policy.version,
            "evidence_sha256": selectors.evidence_snapshot_sha256(facts),
        }
    )


def policy_block(policy: PolicyVersion) -> dict:
    return {"name": policy.document.name, "version": policy.version, "digest": f"sha256:{policy.sha256}"}


def answer_from(*, policy: PolicyVersion, environment_key: str, inputs: dict, at) -> dict:
    return gates.decide(document=policy.document, environment_key=environment_key, inputs=inputs, at=at)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a promotion: the policy in force, the inputs it read and the answer the gates gave."""

    policy: PolicyVersion
    inputs: dict[str, Any]
    answer: dict[str, Any]
    at: Any


def evaluate(promotion: Promotion, *, at=None) -> Evaluation:
    """Judge a promotion now (or at `at`) by the product's policy in force."""
    at = at or timezone.now()
    policy = active_policy(promotion.release.product)
    inputs = status_inputs(promotion=promotion, environment=promotion.environment, policy=policy)
    answer = answer_from(policy=policy, environment_key=promotion.environment.key, inputs=inputs, at=at)
    return Evaluation(policy=policy, inputs=inputs, answer=answer, at=at)


def promotion_status(promotion: Promotion, *, at=None) -> dict[str, Any]:
    """The status object of DESIGN §7 for a promotion."""
    evaluation = evaluate(promotion, at=at)
    answer = evaluation.answer
    return {
        "decision": answer["decision"],
        "product": promotion.release.product.key,
        "release": promotion.release.version,
        "promotion": promotion.human_id,
        "environment": promotion.environment.key,
        "policy": policy_block(evaluation.policy),
        "gates": answer["gates"],
        "approvals": answer["approvals"],
        "reasons": answer["reasons"],
        "evaluated_at": evaluation.at.isoformat(),
        "_inputs": evaluation.inputs,
    }


def promotion_for_artifact(*, artifact: Artifact, environment: Environment) -> Promotion | None:
    """The promotion that answers for a digest: the newest one of a release containing it into the environment."""
    return (
        Promotion.objects.filter(environment=environment, release__artifacts=artifact)
        .select_related("release", "release__product", "environment", "requester", "policy_version")
        .order_by("-id")
        .first()
    )


def answer_sha256(answer: dict) -> str:
    """The hash of an answer's decision, gates, approvals and reasons: two answers that say the same thing match."""
    return canonical_sha256({k: answer[k] for k in ("decision", "gates", "approvals", "reasons")})


def decision_replay(decision: Decision) -> dict[str, Any]:
    """Recompute a stored decision from its recorded inputs and policy version (for audits and tests)."""
    answer = answer_from(
        policy=decision.policy_version,
        environment_key=decision.environment.key,
        inputs=decision.inputs,
        at=decision.evaluated_at,
    )
    return {**answer, "matches": answer_sha256(answer) == decision.answer_sha256}


# ---------------------------------------------------------------- the CI gate, cached


class _LocalAnswers:
    """A small per-process LRU in front of the shared cache: keys name their inputs, so no entry can go stale
    (a changed input is a different key), and `valid_until` is checked on every read all the same."""

    def __init__(self, size: int = 4096):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: str):
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: str, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_local_answers = _LocalAnswers()


def status_answer(*, artifact: Artifact, environment_key: str) -> dict[str, Any]:
    """The CI gate for an artifact already in hand (see status_answer_for)."""
    found = selectors.status_key(artifact_id=artifact.pk, environment_key=environment_key)
    if found is None:
        raise NotFound(f"artifact {artifact.digest} no longer exists")
    return status_answer_for(found=found, environment_key=environment_key, artifact=artifact)


def status_answer_for(
    *, found: selectors.StatusKey, environment_key: str, artifact: Artifact | None = None
) -> dict[str, Any]:
    """The CI gate: cached by inputs stamp, never beyond the earliest approval expiry.

    `found` (selectors.status_key) names the artifact, environment and stamp, so a cached answer costs no other
    query; the artifact is loaded only to compute a fresh answer."""
    if found.environment_id is None:
        known = ", ".join(Environment.objects.filter(product_id=found.product_id).values_list("key", flat=True))
        raise NotFound(f"{found.product_key} has no environment {environment_key!r} (environments: {known})")
    key = f"custody:status:{found.artifact_id}:{found.environment_id}:{found.stamp}"
    now = timezone.now()
    cached = _local_answers.get(key) or cache.get(key)
    if cached is not None and cached["valid_until"] > now.timestamp():
        _local_answers.put(key, cached)
        return cached["body"]
    if artifact is None:
        artifact = Artifact.objects.select_related("product").get(pk=found.artifact_id)
    environment = Environment.objects.get(pk=found.environment_id)
    promotion = promotion_for_artifact(artifact=artifact, environment=environment)
    policy = active_policy(artifact.product)
    if policy is None:
        raise InvalidState(f"{artifact.product.key} has no active policy, so no decision can be made")
    inputs = status_inputs(promotion=promotion, environment=environment, policy=policy)
    answer = answer_from(policy=policy, environment_key=environment.key, inputs=inputs, at=now)
    body = {
        "decision": answer["decision"],
        "product": artifact.product.key,
        "release": promotion.release.version if promotion else None,
        "promotion": promotion.human_id if promotion else None,
        "environment": environment.key,
        "policy": policy_block(policy),
        "gates": answer["gates"],
        "approvals": answer["approvals"],
        "reasons": answer["reasons"],
        "evaluated_at": now.isoformat(),
    }
    # Never serve an "allowed" past the moment a signature lapses.
    expiries = [parse_timestamp(s["expires_at"]) for s in answer["approvals"].get("signers", []) if s.get("expires_at")]
    valid_until = min([now + timedelta(seconds=CACHE_SECONDS), *expiries]).timestamp()
    cache.set(key, {"body": body, "valid_until": valid_until}, timeout=CACHE_SECONDS)
    _local_answers.put(key, {"body": body, "valid_until": valid_until})
    return body
