"""The policy document as Custody holds it once read: its vocabulary, its rules, and the errors of reading one.

Pure Python on purpose (no Django): the same rules serve an upload in the browser, `manage.py load_policy`, and a
policy checked in CI. See docs/policy.md for the author's reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# The roles a policy may name: the role vocabulary of changecontrol.models.Role (DESIGN §8), written out here so
# this module needs no Django; tests/changecontrol/test_role_vocabulary.py keeps the two one vocabulary.
ROLES = ("engineer", "release_manager", "quality", "security", "product", "sre", "auditor", "admin")

GATE_KINDS = (
    "tests",
    "coverage",
    "static_analysis",
    "vulnerabilities",
    "licenses",
    "sbom",
    "signature",
    "provenance",
    "traceability",
    "change_requests",
    "evidence",
    "cel",
)
SEVERITIES = ("critical", "high", "medium", "low", "unknown")
TRACEABILITY_REQUIREMENTS = ("requirements_tested", "risk_controls_verified", "no_suspect_links")
TRACE_GAPS = ("missing_test", "not_executed", "failed", "risk_control_unverified", "orphan_test", "suspect")
GAP_SEVERITIES = ("error", "warning", "ignored")
TRACE_SCOPES = ("release", "current")
DEFAULT_GAP_SEVERITIES = MappingProxyType(
    {
        "missing_test": "error",
        "not_executed": "warning",
        "failed": "error",
        "risk_control_unverified": "error",
        "orphan_test": "warning",
        "suspect": "warning",
    }
)
# The evidence types of the public API (DESIGN §7); a signature gate may name the ones it accepts.
EVIDENCE_TYPES = (
    "junit",
    "cobertura",
    "lcov",
    "jacoco",
    "sarif",
    "cyclonedx",
    "spdx",
    "grype",
    "trivy",
    "osv",
    "openvex",
    "dsse",
    "cosign",
    "generic",
)


# ---------------------------------------------------------------------------------------------------------
# Text in messages


def strip_nul(text: str) -> str:
    # PostgreSQL text columns refuse U+0000; a YAML "\0" escape could smuggle one in.
    return text.replace("\x00", "")


def kind_of(value: Any) -> str:
    """A reader's word for a parsed YAML value's type, for error messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({value!r})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({value})"


# ---------------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class PolicyError:
    """One problem in a policy document, at a line and a dotted path."""

    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"line {self.line}: {where}{self.message}"


class PolicyInvalid(Exception):
    """The policy document does not validate; `errors` holds every problem found, in line order."""

    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = sorted(errors, key=lambda error: (error.line, error.path))
        super().__init__("\n".join(str(error) for error in self.errors))


class RiskAnswersInvalid(Exception):
    """The risk questionnaire answers do not fit the policy's questions; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("the risk answers are invalid:\n" + "\n".join(self.errors))


class UnknownPolicyName(LookupError):
    """A tier or environment asked of a policy that the policy does not define."""

    def __str__(self) -> str:
        # LookupError's default repr-quotes the message; we want it plain.
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------------------------------------------
# The document


@dataclass(frozen=True)
class TierRule:
    """A risk tier that applies from `min_score` upwards."""

    tier: str
    min_score: int


@dataclass(frozen=True)
class RiskModel:
    """The risk questionnaire: weighted answers per question, and the score thresholds of each tier."""

    questions: Mapping[str, Mapping[str, int]]
    tiers: tuple[TierRule, ...]  # riskiest first (highest min_score)


@dataclass(frozen=True)
class RiskResult:
    """The outcome of scoring a questionnaire: the total, the tier it falls in, and each answer's weight."""

    score: int
    tier: str
    breakdown: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class ChangeApprovalRule:
    """What a change request of one tier needs: auto-approval, or `count` distinct signers from `roles`."""

    auto: bool
    roles: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class ApprovalRule:
    """The signatures a promotion into an environment needs, per tier, and how long they stay valid."""

    roles_by_tier: Mapping[str, tuple[str, ...]]
    valid_for_hours: int


@dataclass(frozen=True)
class GateRule:
    """One automated check on a promotion; `params` holds the kind's parameters with defaults filled in."""

    id: str
    kind: str
    blocking: bool
    params: Mapping[str, Any]
    description: str


@dataclass(frozen=True)
class EnvironmentRule:
    """An environment's promotion rules: which environment must come first, approvals and gates."""

    key: str
    after: str | None
    approval: ApprovalRule | None
    gates: tuple[GateRule, ...]


@dataclass(frozen=True)
class TraceabilityRule:
    """How each kind of trace-matrix gap counts (error, warning or ignored), and what a release is judged against.

    `scope` "release" (the default): a release is judged against its own scope, the items in force when it froze
    plus those its change requests link (IEC 62304 §5.7-5.8, §8); "current": every requirement current when asked.
    """

    severities: Mapping[str, str]
    scope: str = "release"


@dataclass(frozen=True)
class BreakGlassRule:
    """Who may deploy in an emergency without approval, and the window for the retrospective review."""

    roles: tuple[str, ...]
    retrospective_review_hours: int


@dataclass(frozen=True)
class TestsRule:
    """Whether a reviewer may accept a failing test for a release (a signed record of its own), and on what terms.

    `accept_failure_tiers`: the tiers (of a release: its riskiest change request) whose failures may be accepted;
    none by default. `accept_failure_roles`: who signs an acceptance. `problem_report_required`: an acceptance must
    name the problem report that tracks the failure."""

    accept_failure_tiers: tuple[str, ...] = ()
    accept_failure_roles: tuple[str, ...] = ("quality",)
    problem_report_required: bool = False


# Who may propose a new version of a product's policy when its policy says nothing (or it has none yet).
DEFAULT_POLICY_PROPOSER_ROLES = ("quality", "admin")


@dataclass(frozen=True)
class PolicyChangesRule:
    """Who may propose the next version of this policy (signing it stays a quality reviewer's act)."""

    propose_roles: tuple[str, ...] = DEFAULT_POLICY_PROPOSER_ROLES


@dataclass(frozen=True)
class PolicyDocument:
    """One validated policy document; methods answer questions and never change it."""

    name: str
    risk: RiskModel
    change_approval: Mapping[str, ChangeApprovalRule]
    environments: Mapping[str, EnvironmentRule]  # in file order
    traceability: TraceabilityRule
    break_glass: BreakGlassRule
    source_text: str
    sha256: str
    tests: TestsRule = TestsRule()
    policy_changes: PolicyChangesRule = PolicyChangesRule()

    def score_risk(self, answers: Mapping[str, str]) -> RiskResult:
        """Score a risk questionnaire and find its tier; raises RiskAnswersInvalid listing every problem."""
        if not isinstance(answers, Mapping):
            raise RiskAnswersInvalid([f"answers must be a mapping of question to answer, not {kind_of(answers)}"])
        errors = []
        breakdown = []
        for question, weights in self.risk.questions.items():
            allowed = ", ".join(weights)
            if question not in answers:
                errors.append(f"{question}: not answered (answers: {allowed})")
                continue
            answer = answers[question]
            if not isinstance(answer, str) or answer not in weights:
                errors.append(f"{question}: {strip_nul(repr(answer))} is not an answer (answers: {allowed})")
                continue
            breakdown.append((question, answer, weights[answer]))
        for question in answers:
            if question not in self.risk.questions:
                known = ", ".join(self.risk.questions)
                errors.append(f"{strip_nul(repr(question))} is not a question of this policy (questions: {known})")
        if errors:
            raise RiskAnswersInvalid(errors)
        score = sum(weight for _question, _answer, weight in breakdown)
        return RiskResult(score=score, tier=self._tier_for_score(score), breakdown=tuple(breakdown))

    def _tier_for_score(self, score: int) -> str:
        # Validation guarantees a tier with min_score 0 and weights ≥ 0, so a tier always matches.
        for tier_rule in self.risk.tiers:
            if score >= tier_rule.min_score:
                return tier_rule.tier
        return self.risk.tiers[-1].tier

    def tier_rank(self, tier: str) -> int:
        """The tier's rank: 0 for the least risky, rising with min_score."""
        ascending = [tier_rule.tier for tier_rule in reversed(self.risk.tiers)]
        if tier not in ascending:
            raise UnknownPolicyName(
                f"tier {tier!r} is not defined by policy {self.name!r} (tiers: {', '.join(ascending)})"
            )
        return ascending.index(tier)

    def highest_tier(self, tiers: Iterable[str]) -> str:
        """The riskiest of the given tiers (e.g. of all change requests in a release)."""
        tiers = list(tiers)
        if not tiers:
            raise ValueError("highest_tier needs at least one tier")
        return max(tiers, key=lambda tier: self.tier_rank(tier))

    def change_approval_for(self, tier: str) -> ChangeApprovalRule:
        """The approval rule for a change request of this tier."""
        self.tier_rank(tier)  # raises a clear error for an unknown tier
        return self.change_approval[tier]

    def environment(self, key: str) -> EnvironmentRule:
        """The rules for promoting into one environment."""
        if key not in self.environments:
            known = ", ".join(self.environments)
            raise UnknownPolicyName(
                f"environment {key!r} is not defined by policy {self.name!r} (environments: {known})"
            )
        return self.environments[key]

    def required_roles(self, environment_key: str, tier: str) -> tuple[str, ...]:
        """The roles whose signatures a promotion of this tier into this environment needs (one signer each)."""
        environment = self.environment(environment_key)
        self.tier_rank(tier)
        if environment.approval is None:
            return ()
        return environment.approval.roles_by_tier[tier]

    def as_json(self) -> dict[str, Any]:
        """The document's meaning as plain JSON data, defaults filled in (hash it with sorted keys)."""
        return {
            "policy": self.name,
            "risk": {
                "questions": {question: dict(weights) for question, weights in self.risk.questions.items()},
                "tiers": [{"tier": rule.tier, "min_score": rule.min_score} for rule in self.risk.tiers],
            },
            "change_approval": {
                tier: {"auto": rule.auto, "roles": list(rule.roles), "count": rule.count}
                for tier, rule in self.change_approval.items()
            },
            # A list, because the order of environments is part of the meaning (`after`).
            "environments": [
                {
                    "key": environment.key,
                    "after": environment.after,
                    "approval": None
                    if environment.approval is None
                    else {
                        "roles_by_tier": {
                            tier: list(roles) for tier, roles in environment.approval.roles_by_tier.items()
                        },
                        "valid_for_hours": environment.approval.valid_for_hours,
                    },
                    "gates": [
                        {
                            "id": gate.id,
                            "kind": gate.kind,
                            "blocking": gate.blocking,
                            "description": gate.description,
                            "params": _plain(gate.params),
                        }
                        for gate in environment.gates
                    ],
                }
                for environment in self.environments.values()
            ],
            "traceability": {"severities": dict(self.traceability.severities), "scope": self.traceability.scope},
            "break_glass": {
                "roles": list(self.break_glass.roles),
                "retrospective_review_hours": self.break_glass.retrospective_review_hours,
            },
            "tests": {
                "accept_failures": {
                    "tiers": list(self.tests.accept_failure_tiers),
                    "roles": list(self.tests.accept_failure_roles),
                    "problem_report": "required" if self.tests.problem_report_required else "optional",
                }
            },
            "policy_changes": {"propose_roles": list(self.policy_changes.propose_roles)},
        }


def _plain(value: Any) -> Any:
    """Read-only mappings and tuples turned back into JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
