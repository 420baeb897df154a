"""The policy-as-code document: read and validate one product policy, score risk, evaluate CEL conditions.

Pure Python on purpose (no Django): the same module validates an upload in the browser, a file loaded by
`manage.py load_policy`, and a policy checked in CI. See docs/policy.md for the author's reference.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import celpy
import lark
import yaml
from license_expression import get_spdx_licensing

# The role vocabulary; the lead's models use the same keys (DESIGN §8).
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

MAX_POLICY_BYTES = 256 * 1024
# Real policies nest five or six levels; the cap keeps a hostile document from exhausting the recursion
# of the composer and of the validator below.
MAX_NESTING = 32
MAX_CEL_LENGTH = 4096
MAX_HOURS = 24 * 365
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# SPDX allows custom identifiers of this shape (SPDX 2.3 §10.1); the licence list cannot know them.
_LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")
# The characters of an SPDX short identifier (`GPL-2.0+` included); anything else is not worth asking about.
_SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map")
)


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


class CelError(Exception):
    """A CEL expression could not be compiled or evaluated, or did not produce true or false."""


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
    """How each kind of trace-matrix gap counts: error, warning or ignored."""

    severities: Mapping[str, str]


@dataclass(frozen=True)
class BreakGlassRule:
    """Who may deploy in an emergency without approval, and the window for the retrospective review."""

    roles: tuple[str, ...]
    retrospective_review_hours: int


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

    def score_risk(self, answers: Mapping[str, str]) -> RiskResult:
        """Score a risk questionnaire and find its tier; raises RiskAnswersInvalid listing every problem."""
        if not isinstance(answers, Mapping):
            raise RiskAnswersInvalid([f"answers must be a mapping of question to answer, not {_kind_of(answers)}"])
        errors = []
        breakdown = []
        for question, weights in self.risk.questions.items():
            allowed = ", ".join(weights)
            if question not in answers:
                errors.append(f"{question}: not answered (answers: {allowed})")
                continue
            answer = answers[question]
            if not isinstance(answer, str) or answer not in weights:
                errors.append(f"{question}: {_strip_nul(repr(answer))} is not an answer (answers: {allowed})")
                continue
            breakdown.append((question, answer, weights[answer]))
        for question in answers:
            if question not in self.risk.questions:
                known = ", ".join(self.risk.questions)
                errors.append(f"{_strip_nul(repr(question))} is not a question of this policy (questions: {known})")
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
            "traceability": {"severities": dict(self.traceability.severities)},
            "break_glass": {
                "roles": list(self.break_glass.roles),
                "retrospective_review_hours": self.break_glass.retrospective_review_hours,
            },
        }


def _plain(value: Any) -> Any:
    """Read-only mappings and tuples turned back into JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------------------
# Reading YAML with line numbers


def _strip_nul(text: str) -> str:
    # PostgreSQL text columns refuse U+0000; a YAML "\0" escape could smuggle one in.
    return text.replace("\x00", "")


def _kind_of(value: Any) -> str:
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


def _yaml_error(error: yaml.YAMLError) -> PolicyError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    message = problem or str(error).splitlines()[0]
    if problem and context:
        message = f"{context}, {problem}"
    return PolicyError(line=line, path="", message=_strip_nul(f"YAML syntax error: {message}"))


def _refuse_unsafe_yaml(text: str) -> list[PolicyError]:
    """Anchors, aliases, custom tags and deep nesting are refused before any node is built."""
    errors = []
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            # Aliases are how "billion laughs" works in YAML; a policy is short enough to write out.
            errors.append(PolicyError(line=line, path="", message=f"YAML aliases are not allowed (*{event.anchor})"))
            continue
        if getattr(event, "anchor", None) is not None:
            errors.append(PolicyError(line=line, path="", message=f"YAML anchors are not allowed (&{event.anchor})"))
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _STANDARD_TAGS:
            message = f"YAML tag {tag} is not allowed; only plain text, numbers, booleans, lists and mappings"
            errors.append(PolicyError(line=line, path="", message=_strip_nul(message)))
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                message = f"the document nests deeper than {MAX_NESTING} levels"
                return [*errors, PolicyError(line=line, path="", message=message)]
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return errors


class _Located:
    """Plain data built from YAML nodes, remembering where each path's key and value start."""

    def __init__(self, *, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.value_nodes: dict[str, yaml.Node] = {}
        self.key_lines: dict[str, int] = {}
        self.errors: list[PolicyError] = []

    def build(self, node: yaml.Node, path: str) -> Any:
        self.value_nodes[path] = node
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    self.errors.append(PolicyError(line=key_line, path=path, message="keys must be plain names"))
                    continue
                # Keys are names: take their literal text, so `no:` or `1.0:` stay the words the author wrote.
                key = _strip_nul(key_node.value)
                child = f"{path}.{key}" if path else key
                if key in result:
                    first = self.key_lines[child]
                    message = f"duplicate key {key!r} (first at line {first})"
                    self.errors.append(PolicyError(line=key_line, path=child, message=message))
                    continue
                self.key_lines[child] = key_line
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item_node in enumerate(node.value):
                child = f"{path}[{index}]"
                self.key_lines[child] = item_node.start_mark.line + 1
                items.append(self.build(item_node, child))
            return items
        value = self.loader.construct_object(node)
        return _strip_nul(value) if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------------------
# Validation helpers


class _Checker:
    """Collects every validation error with the line of the offending key or value."""

    def __init__(self, *, located: _Located) -> None:
        self.located = located
        self.errors: list[PolicyError] = list(located.errors)

    def line_of(self, path: str, *, key: bool = False) -> int:
        probe = path
        node = self.located.value_nodes.get(path)
        if isinstance(node, yaml.CollectionNode) and path in self.located.key_lines:
            # A whole list or mapping is at fault: point at its key (`tiers:`), not its first entry.
            key = True
        while True:
            if key and probe in self.located.key_lines:
                return self.located.key_lines[probe]
            node = self.located.value_nodes.get(probe)
            if node is not None:
                return node.start_mark.line + 1
            if probe in self.located.key_lines:
                return self.located.key_lines[probe]
            if not probe:
                return 1
            probe = _parent_path(probe)

    def error(self, path: str, message: str, *, key: bool = False) -> None:
        self.errors.append(PolicyError(line=self.line_of(path, key=key), path=path, message=_strip_nul(message)))

    def mapping(
        self, path: str, value: Any, *, required: Iterable[str] = (), optional: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        """The value as a mapping with only the allowed keys; None (after reporting) when it is not one."""
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_kind_of(value)}")
            return None
        required = tuple(required)
        allowed = (*required, *optional)
        # With no keys named, the keys are the author's own names (questions, tiers, environments).
        for key in value if allowed else ():
            if key not in allowed:
                self.error(_join(path, key), f"unknown key {key!r} (allowed: {', '.join(allowed)})", key=True)
        for key in required:
            if key not in value:
                self.error(path, f"missing required key {key!r}", key=True)
        return value

    def name(self, path: str, value: Any, *, what: str) -> str | None:
        if not isinstance(value, str):
            self.error(
                path, f"expected a {what} name, got {_kind_of(value)} (quote it if YAML read it as another type)"
            )
            return None
        if not _NAME.match(value):
            self.error(
                path,
                f"{what} name {value!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
            return None
        return value

    def text(self, path: str, value: Any, *, allow_empty: bool = False) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"expected text, got {_kind_of(value)}")
            return None
        if not allow_empty and not value.strip():
            self.error(path, "must not be empty")
            return None
        return value

    def integer(self, path: str, value: Any, *, minimum: int, maximum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected a whole number, got {_kind_of(value)}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
            self.error(path, f"must be {bounds}, got {value}")
            return None
        return value

    def rate(self, path: str, value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error(path, f"expected a number from 0 to 1, got {_kind_of(value)}")
            return None
        if not 0 <= value <= 1:
            hint = " (write rates as fractions: 0.8 for 80%)" if 1 < value <= 100 else ""
            self.error(path, f"must be from 0 to 1, got {value}{hint}")
            return None
        return float(value)

    def boolean(self, path: str, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {_kind_of(value)}")
            return None
        return value

    def items(self, path: str, value: Any, *, non_empty: bool) -> list[Any] | None:
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {_kind_of(value)}")
            return None
        if non_empty and not value:
            self.error(path, "must list at least one entry")
            return None
        return value

    def choices(
        self, path: str, value: Any, *, allowed: Iterable[str], what: str, non_empty: bool
    ) -> tuple[str, ...] | None:
        """A list of distinct words drawn from a fixed vocabulary."""
        entries = self.items(path, value, non_empty=non_empty)
        if entries is None:
            return None
        allowed = tuple(allowed)
        chosen: list[str] = []
        ok = True
        for index, entry in enumerate(entries):
            entry_path = f"{path}[{index}]"
            if not isinstance(entry, str) or entry not in allowed:
                self.error(entry_path, f"{_kind_of(entry)} is not a known {what} ({what}s: {', '.join(allowed)})")
                ok = False
            elif entry in chosen:
                self.error(entry_path, f"{what} {entry!r} is listed twice")
                ok = False
            else:
                chosen.append(entry)
        return tuple(chosen) if ok else None

    def roles(self, path: str, value: Any, *, non_empty: bool = True) -> tuple[str, ...] | None:
        return self.choices(path, value, allowed=ROLES, what="role", non_empty=non_empty)

    def texts(self, path: str, value: Any) -> tuple[str, ...] | None:
        """A non-empty list of distinct non-empty strings."""
        entries = self.items(path, value, non_empty=True)
        if entries is None:
            return None
        result: list[str] = []
        ok = True
        for index, entry in enumerate(entries):
            entry_path = f"{path}[{index}]"
            checked = self.text(entry_path, entry)
            if checked is None:
                ok = False
            elif checked in result:
                self.error(entry_path, f"{checked!r} is listed twice")
                ok = False
            else:
                result.append(checked)
        return tuple(result) if ok else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rsplit(".", 1)[0] if "." in path else ""


# ---------------------------------------------------------------------------------------------------------
# Sections


def _read_risk(checker: _Checker, raw: Any) -> RiskModel | None:
    section = checker.mapping("risk", raw, required=("questions", "tiers"))
    if section is None:
        return None
    questions = _read_questions(checker, section.get("questions")) if "questions" in section else None
    tiers = _read_tiers(checker, section.get("tiers")) if "tiers" in section else None
    if questions is None or tiers is None:
        return None
    highest_possible = sum(max(weights.values()) for weights in questions.values())
    for index, tier_rule in enumerate(tiers):
        if tier_rule.min_score > highest_possible:
            checker.error(
                f"risk.tiers[{index}].min_score",
                f"tier {tier_rule.tier!r} needs a score of {tier_rule.min_score} but the highest possible score "
                f"is {highest_possible}, so no change could ever reach it",
            )
    ordered = tuple(sorted(tiers, key=lambda tier_rule: tier_rule.min_score, reverse=True))
    return RiskModel(questions=MappingProxyType(questions), tiers=ordered)


def _read_questions(checker: _Checker, raw: Any) -> dict[str, Mapping[str, int]] | None:
    section = checker.mapping("risk.questions", raw)
    if section is None:
        return None
    if not section:
        checker.error("risk.questions", "must define at least one question")
        return None
    questions: dict[str, Mapping[str, int]] = {}
    ok = True
    for question, answers in section.items():
        path = f"risk.questions.{question}"
        if checker.name(path, question, what="question") is None:
            ok = False
            continue
        answer_map = checker.mapping(path, answers)
        if answer_map is None:
            ok = False
            continue
        if not answer_map:
            checker.error(path, "must offer at least one answer, e.g. {none: 0, direct: 4}")
            ok = False
            continue
        weights: dict[str, int] = {}
        for answer, weight in answer_map.items():
            answer_path = f"{path}.{answer}"
            checked_answer = checker.name(answer_path, answer, what="answer")
            checked_weight = checker.integer(answer_path, weight, minimum=0, maximum=1000)
            if checked_answer is None or checked_weight is None:
                ok = False
            else:
                weights[checked_answer] = checked_weight
        questions[question] = MappingProxyType(weights)
    return questions if ok else None


def _read_tiers(checker: _Checker, raw: Any) -> list[TierRule] | None:
    entries = checker.items("risk.tiers", raw, non_empty=True)
    if entries is None:
        return None
    tiers: list[TierRule] = []
    ok = True
    names: dict[str, int] = {}
    scores: dict[int, str] = {}
    for index, entry in enumerate(entries):
        path = f"risk.tiers[{index}]"
        tier_map = checker.mapping(path, entry, required=("tier", "min_score"))
        if tier_map is None or "tier" not in tier_map or "min_score" not in tier_map:
            ok = False
            continue
        tier = checker.name(f"{path}.tier", tier_map["tier"], what="tier")
        min_score = checker.integer(f"{path}.min_score", tier_map["min_score"], minimum=0)
        if tier is None or min_score is None:
            ok = False
            continue
        if tier in names:
            checker.error(f"{path}.tier", f"tier {tier!r} is defined twice (also risk.tiers[{names[tier]}])")
            ok = False
            continue
        if min_score in scores:
            checker.error(
                f"{path}.min_score",
                f"min_score {min_score} is already the threshold of tier {scores[min_score]!r}; "
                "each tier needs its own threshold",
            )
            ok = False
            continue
        names[tier] = index
        scores[min_score] = tier
        tiers.append(TierRule(tier=tier, min_score=min_score))
    if ok and 0 not in scores:
        lowest = min(scores)
        checker.error("risk.tiers", f"no tier has min_score 0, so a score below {lowest} would have no tier")
        ok = False
    return tiers if ok else None


def _read_change_approval(checker: _Checker, raw: Any, *, tiers: tuple[str, ...] | None) -> dict | None:
    section = checker.mapping("change_approval", raw)
    if section is None:
        return None
    rules: dict[str, ChangeApprovalRule] = {}
    ok = True
    for tier, rule in section.items():
        path = f"change_approval.{tier}"
        if tiers is not None and tier not in tiers:
            checker.error(path, f"tier {tier!r} is not defined in risk.tiers (tiers: {', '.join(tiers)})", key=True)
            ok = False
            continue
        rule_map = checker.mapping(path, rule, optional=("auto", "roles", "count"))
        if rule_map is None:
            ok = False
            continue
        auto = checker.boolean(f"{path}.auto", rule_map["auto"]) if "auto" in rule_map else False
        if auto is None:
            ok = False
            continue
        if auto:
            for key in ("roles", "count"):
                if key in rule_map:
                    checker.error(
                        f"{path}.{key}", "auto: true approves without signers; remove roles and count", key=True
                    )
                    ok = False
            rules[tier] = ChangeApprovalRule(auto=True, roles=(), count=0)
            continue
        if "roles" not in rule_map:
            checker.error(path, "missing required key 'roles' (or write auto: true to approve automatically)", key=True)
            ok = False
            continue
        roles = checker.roles(f"{path}.roles", rule_map["roles"])
        # count is the number of distinct signers; it may exceed len(roles) (two quality reviewers).
        count = checker.integer(f"{path}.count", rule_map["count"], minimum=1) if "count" in rule_map else 1
        if roles is None or count is None:
            ok = False
            continue
        rules[tier] = ChangeApprovalRule(auto=False, roles=roles, count=count)
    if tiers is not None:
        for tier in tiers:
            if tier not in section:
                checker.error("change_approval", f"tier {tier!r} has no rule; every tier needs one", key=True)
                ok = False
    if not ok:
        return None
    ordered = {tier: rules[tier] for tier in tiers} if tiers is not None else rules
    return ordered


def _read_environments(checker: _Checker, raw: Any, *, tiers: tuple[str, ...] | None) -> dict | None:
    section = checker.mapping("environments", raw)
    if section is None:
        return None
    if not section:
        checker.error("environments", "must define at least one environment")
        return None
    environments: dict[str, EnvironmentRule] = {}
    ok = True
    earlier: list[str] = []
    for key, body in section.items():
        path = f"environments.{key}"
        environment = _read_environment(
            checker, path, key, body, earlier=tuple(earlier), all_keys=tuple(section), tiers=tiers
        )
        earlier.append(key)
        if environment is None:
            ok = False
        else:
            environments[key] = environment
    return environments if ok else None


def _read_environment(
    checker: _Checker,
    path: str,
    key: str,
    raw: Any,
    *,
    earlier: tuple[str, ...],
    all_keys: tuple[str, ...],
    tiers: tuple[str, ...] | None,
) -> EnvironmentRule | None:
    ok = checker.name(path, key, what="environment") is not None
    body = checker.mapping(path, raw if raw is not None else {}, optional=("after", "approval", "gates"))
    if body is None:
        return None
    after = None
    if body.get("after") is not None:
        after = checker.name(f"{path}.after", body["after"], what="environment")
        if after is None:
            ok = False
        elif after not in earlier:
            if after == key:
                message = f"environment {key!r} cannot come after itself"
            elif after in all_keys:
                message = f"{after!r} is defined later in the file; list environments in promotion order"
            else:
                where = f"earlier environments: {', '.join(earlier)}" if earlier else "it is the first environment"
                message = f"{after!r} must name an environment defined earlier in the file ({where})"
            checker.error(f"{path}.after", message)
            ok = False
    approval = None
    if body.get("approval") is not None:
        approval = _read_approval(checker, f"{path}.approval", body["approval"], tiers=tiers)
        ok = ok and approval is not None
    gates: tuple[GateRule, ...] = ()
    if body.get("gates") is not None:
        read_gates = _read_gates(checker, f"{path}.gates", body["gates"])
        if read_gates is None:
            ok = False
        else:
            gates = read_gates
    if not ok:
        return None
    return EnvironmentRule(key=key, after=after, approval=approval, gates=gates)


def _read_approval(checker: _Checker, path: str, raw: Any, *, tiers: tuple[str, ...] | None) -> ApprovalRule | None:
    body = checker.mapping(path, raw, required=("roles_by_tier", "valid_for_hours"))
    if body is None:
        return None
    ok = "roles_by_tier" in body and "valid_for_hours" in body
    hours = None
    if "valid_for_hours" in body:
        hours = checker.integer(f"{path}.valid_for_hours", body["valid_for_hours"], minimum=1, maximum=MAX_HOURS)
        ok = ok and hours is not None
    roles_by_tier: dict[str, tuple[str, ...]] = {}
    if "roles_by_tier" in body:
        by_tier_path = f"{path}.roles_by_tier"
        by_tier = checker.mapping(by_tier_path, body["roles_by_tier"])
        if by_tier is None:
            return None
        for tier, roles in by_tier.items():
            tier_path = f"{by_tier_path}.{tier}"
            if tiers is not None and tier not in tiers:
                checker.error(
                    tier_path, f"tier {tier!r} is not defined in risk.tiers (tiers: {', '.join(tiers)})", key=True
                )
                ok = False
                continue
            # An empty list is allowed and explicit: this tier needs no signature here.
            checked = checker.roles(tier_path, roles, non_empty=False)
            if checked is None:
                ok = False
            else:
                roles_by_tier[tier] = checked
        if tiers is not None:
            for tier in tiers:
                if tier not in by_tier:
                    checker.error(
                        by_tier_path,
                        f"tier {tier!r} is not listed; list it (use [] when it needs no signature)",
                        key=True,
                    )
                    ok = False
    if not ok or hours is None:
        return None
    ordered = {tier: roles_by_tier[tier] for tier in tiers} if tiers is not None else roles_by_tier
    return ApprovalRule(roles_by_tier=MappingProxyType(ordered), valid_for_hours=hours)


_COMMON_GATE_KEYS = ("id", "kind", "blocking", "description")


def _read_gates(checker: _Checker, path: str, raw: Any) -> tuple[GateRule, ...] | None:
    entries = checker.items(path, raw, non_empty=False)
    if entries is None:
        return None
    gates: list[GateRule] = []
    ok = True
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        gate_path = f"{path}[{index}]"
        gate = _read_gate(checker, gate_path, entry)
        if gate is None:
            ok = False
            continue
        if gate.id in seen:
            checker.error(f"{gate_path}.id", f"gate id {gate.id!r} is already used by {path}[{seen[gate.id]}]")
            ok = False
            continue
        seen[gate.id] = index
        gates.append(gate)
    return tuple(gates) if ok else None


def _read_gate(checker: _Checker, path: str, raw: Any) -> GateRule | None:
    if not isinstance(raw, dict):
        checker.error(path, f"expected a gate mapping like {{id: tests, kind: tests}}, got {_kind_of(raw)}")
        return None
    ok = True
    for key in ("id", "kind"):
        if key not in raw:
            checker.error(path, f"missing required key {key!r}", key=True)
            ok = False
    gate_id = checker.name(f"{path}.id", raw["id"], what="gate") if "id" in raw else None
    kind = raw.get("kind")
    if "kind" in raw and kind not in GATE_KINDS:
        checker.error(f"{path}.kind", f"{_kind_of(kind)} is not a gate kind (kinds: {', '.join(GATE_KINDS)})")
        kind = None
    blocking = checker.boolean(f"{path}.blocking", raw["blocking"]) if "blocking" in raw else True
    description = ""
    if "description" in raw:
        description = checker.text(f"{path}.description", raw["description"], allow_empty=True)
    if kind is None or gate_id is None or blocking is None or description is None or not ok:
        return None
    parameters = {key: value for key, value in raw.items() if key not in _COMMON_GATE_KEYS}
    params = _GATE_READERS[kind](checker, path, parameters, raw)
    if params is None:
        return None
    return GateRule(id=gate_id, kind=kind, blocking=blocking, params=MappingProxyType(params), description=description)


def _unknown_parameters(checker: _Checker, path: str, parameters: dict, *, allowed: tuple[str, ...], kind: str) -> bool:
    """Report parameters the gate kind does not take; True when there were none."""
    clean = True
    for key in parameters:
        if key not in allowed:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameters"
            checker.error(
                _join(path, key),
                f"unknown parameter {key!r} for a {kind} gate (it {takes}; "
                f"every gate also takes {', '.join(_COMMON_GATE_KEYS)})",
                key=True,
            )
            clean = False
    return clean


def _gate_tests(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("max_failed", "min_total"), kind="tests")
    params = {"max_failed": 0, "min_total": 0}
    for key in params:
        if key in parameters:
            value = checker.integer(f"{path}.{key}", parameters[key], minimum=0)
            ok = ok and value is not None
            params[key] = value
    return params if ok else None


def _gate_coverage(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    allowed = ("min_line_rate", "min_branch_rate")
    ok = _unknown_parameters(checker, path, parameters, allowed=allowed, kind="coverage")
    if "min_line_rate" not in parameters:
        checker.error(path, "missing required key 'min_line_rate' (a fraction, e.g. 0.8)", key=True)
        return None
    params: dict[str, float | None] = {
        "min_line_rate": checker.rate(f"{path}.min_line_rate", parameters["min_line_rate"])
    }
    params["min_branch_rate"] = None
    if parameters.get("min_branch_rate") is not None:
        params["min_branch_rate"] = checker.rate(f"{path}.min_branch_rate", parameters["min_branch_rate"])
        ok = ok and params["min_branch_rate"] is not None
    return params if ok and params["min_line_rate"] is not None else None


def _severity_limits(checker: _Checker, path: str, parameters: dict) -> dict[str, int] | None:
    if "max" not in parameters:
        checker.error(path, "missing required key 'max' (e.g. max: {critical: 0, high: 0})", key=True)
        return None
    limits_path = f"{path}.max"
    limits = checker.mapping(limits_path, parameters["max"], optional=SEVERITIES)
    if limits is None:
        return None
    if not limits:
        checker.error(limits_path, f"must limit at least one severity ({', '.join(SEVERITIES)})")
        return None
    result = {}
    ok = True
    for severity in SEVERITIES:
        if severity in limits:
            value = checker.integer(f"{limits_path}.{severity}", limits[severity], minimum=0)
            ok = ok and value is not None
            result[severity] = value
    ok = ok and all(key in SEVERITIES for key in limits)
    return result if ok else None


def _gate_static_analysis(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("max",), kind="static_analysis")
    limits = _severity_limits(checker, path, parameters)
    return {"max": MappingProxyType(limits)} if ok and limits is not None else None


def _gate_vulnerabilities(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    allowed = ("max", "ignore_unfixed")
    ok = _unknown_parameters(checker, path, parameters, allowed=allowed, kind="vulnerabilities")
    limits = _severity_limits(checker, path, parameters)
    ignore_unfixed = False
    if "ignore_unfixed" in parameters:
        ignore_unfixed = checker.boolean(f"{path}.ignore_unfixed", parameters["ignore_unfixed"])
    if not ok or limits is None or ignore_unfixed is None:
        return None
    return {"max": MappingProxyType(limits), "ignore_unfixed": ignore_unfixed}


@lru_cache(maxsize=1)
def _spdx_licensing():
    return get_spdx_licensing()


def _spdx_ids(checker: _Checker, path: str, value: Any) -> tuple[str, ...] | None:
    """Distinct SPDX licence identifiers, normalised to the SPDX list's spelling (`GPL-3.0` → `GPL-3.0-only`)."""
    entries = checker.items(path, value, non_empty=False)
    if entries is None:
        return None
    result: list[str] = []
    ok = True
    for index, entry in enumerate(entries):
        entry_path = f"{path}[{index}]"
        if checker.text(entry_path, entry) is None:
            ok = False
            continue
        identifier = entry.strip()
        if re.search(r"[\s()]", identifier):
            checker.error(entry_path, f"{identifier!r} is an expression; list one SPDX licence id per entry")
            ok = False
            continue
        if _LICENSE_REF.match(identifier):
            normalised = identifier
        else:
            try:
                info = _spdx_licensing().validate(identifier) if _SPDX_ID.match(identifier) else None
            except Exception:
                # license-expression can trip over odd input (seen: AttributeError on a backslash); an id it
                # cannot read is simply not an SPDX id.
                info = None
            if info is None or info.errors or not info.normalized_expression:
                checker.error(
                    entry_path,
                    f"{identifier!r} is not an SPDX licence id (see https://spdx.org/licenses/; "
                    "custom licences are written LicenseRef-<name>)",
                )
                ok = False
                continue
            normalised = info.normalized_expression
        if normalised in result:
            checker.error(entry_path, f"{normalised!r} is listed twice")
            ok = False
            continue
        result.append(normalised)
    return tuple(result) if ok else None


def _gate_licenses(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("deny", "allow"), kind="licenses")
    deny = _spdx_ids(checker, f"{path}.deny", parameters["deny"]) if "deny" in parameters else ()
    allow = None
    if parameters.get("allow") is not None:
        allow = _spdx_ids(checker, f"{path}.allow", parameters["allow"])
        if allow is None:
            return None
    if not ok or deny is None:
        return None
    if not deny and not allow:
        checker.error(path, "a licenses gate needs a non-empty deny list, allow list, or both", key=True)
        return None
    for both in sorted(set(deny) & set(allow or ())):
        checker.error(f"{path}.allow", f"{both!r} is both denied and allowed")
        ok = False
    return {"deny": deny, "allow": allow} if ok else None


def _gate_without_parameters(kind: str):
    def read(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
        return {} if _unknown_parameters(checker, path, parameters, allowed=(), kind=kind) else None

    return read


def _gate_signature(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("evidence_types",), kind="signature")
    evidence_types = None
    if parameters.get("evidence_types") is not None:
        evidence_types = checker.choices(
            f"{path}.evidence_types",
            parameters["evidence_types"],
            allowed=EVIDENCE_TYPES,
            what="evidence type",
            non_empty=True,
        )
        ok = ok and evidence_types is not None
    return {"evidence_types": evidence_types} if ok else None


def _gate_provenance(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    allowed = ("builder_ids", "require_source_repository")
    ok = _unknown_parameters(checker, path, parameters, allowed=allowed, kind="provenance")
    if "builder_ids" not in parameters:
        checker.error(path, "missing required key 'builder_ids' (the trusted SLSA builder.id values)", key=True)
        return None
    builder_ids = checker.texts(f"{path}.builder_ids", parameters["builder_ids"])
    require_source = True
    if "require_source_repository" in parameters:
        require_source = checker.boolean(f"{path}.require_source_repository", parameters["require_source_repository"])
    if not ok or builder_ids is None or require_source is None:
        return None
    return {"builder_ids": builder_ids, "require_source_repository": require_source}


def _gate_traceability(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("require",), kind="traceability")
    if "require" not in parameters:
        checker.error(path, f"missing required key 'require' (any of {', '.join(TRACEABILITY_REQUIREMENTS)})", key=True)
        return None
    require = checker.choices(
        f"{path}.require",
        parameters["require"],
        allowed=TRACEABILITY_REQUIREMENTS,
        what="requirement",
        non_empty=True,
    )
    return {"require": require} if ok and require is not None else None


def _gate_evidence(checker: _Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("names",), kind="evidence")
    if "names" not in parameters:
        checker.error(path, "missing required key 'names' (the evidence names that must be present)", key=True)
        return None
    names = checker.texts(f"{path}.names", parameters["names"])
    return {"names": names} if ok and names is not None else None


def _gate_cel(checker: _Checker, path: str, parameters: dict, raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("expression",), kind="cel")
    if not str(raw.get("description") or "").strip():
        # A reviewer reads the description, not the expression; a cel gate must say what it checks.
        checker.error(path, "a cel gate needs a description saying what it checks", key=True)
        ok = False
    if "expression" not in parameters:
        checker.error(path, "missing required key 'expression'", key=True)
        return None
    expression_path = f"{path}.expression"
    expression = checker.text(expression_path, parameters["expression"])
    if expression is None:
        return None
    try:
        _compile_cel(expression)
    except _CelSyntaxError as error:
        node = checker.located.value_nodes[expression_path]
        line = node.start_mark.line + 1
        if getattr(node, "style", None) in ("|", ">"):
            # Block scalars start on the line after the indicator; `|` keeps the expression's own lines.
            line += 1 + ((error.line or 1) - 1 if node.style == "|" else 0)
        checker.errors.append(PolicyError(line=line, path=expression_path, message=_strip_nul(str(error))))
        return None
    except CelError as error:
        checker.error(expression_path, str(error))
        return None
    return {"expression": expression} if ok else None


_GATE_READERS = {
    "tests": _gate_tests,
    "coverage": _gate_coverage,
    "static_analysis": _gate_static_analysis,
    "vulnerabilities": _gate_vulnerabilities,
    "licenses": _gate_licenses,
    "sbom": _gate_without_parameters("sbom"),
    "signature": _gate_signature,
    "provenance": _gate_provenance,
    "traceability": _gate_traceability,
    "change_requests": _gate_without_parameters("change_requests"),
    "evidence": _gate_evidence,
    "cel": _gate_cel,
}


def _read_traceability(checker: _Checker, raw: Any) -> TraceabilityRule | None:
    body = checker.mapping("traceability", raw, optional=("severities",))
    if body is None:
        return None
    severities = dict(DEFAULT_GAP_SEVERITIES)
    if body.get("severities") is None:
        return TraceabilityRule(severities=MappingProxyType(severities))
    path = "traceability.severities"
    given = checker.mapping(path, body["severities"], optional=TRACE_GAPS)
    if given is None:
        return None
    ok = all(gap in TRACE_GAPS for gap in given)
    for gap in TRACE_GAPS:
        if gap in given:
            value = given[gap]
            if value not in GAP_SEVERITIES:
                checker.error(f"{path}.{gap}", f"{_kind_of(value)} is not one of {', '.join(GAP_SEVERITIES)}")
                ok = False
            else:
                severities[gap] = value
    return TraceabilityRule(severities=MappingProxyType(severities)) if ok else None


def _read_break_glass(checker: _Checker, raw: Any) -> BreakGlassRule | None:
    body = checker.mapping("break_glass", raw, optional=("roles", "retrospective_review_hours"))
    if body is None:
        return None
    roles = checker.roles("break_glass.roles", body["roles"]) if "roles" in body else ("sre",)
    hours = 24
    if "retrospective_review_hours" in body:
        hours = checker.integer(
            "break_glass.retrospective_review_hours", body["retrospective_review_hours"], minimum=1, maximum=MAX_HOURS
        )
    if roles is None or hours is None:
        return None
    return BreakGlassRule(roles=roles, retrospective_review_hours=hours)


# ---------------------------------------------------------------------------------------------------------
# Entry point


def parse_policy(text: str | bytes) -> PolicyDocument:
    """Read and validate one policy document; raises PolicyInvalid listing every error with its line."""
    if isinstance(text, bytes | bytearray):
        text = _decode(bytes(text))
    if not isinstance(text, str):
        raise TypeError(f"parse_policy takes the policy's text, not {type(text).__name__}")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_POLICY_BYTES:
        message = f"the policy is {size} bytes; the limit is {MAX_POLICY_BYTES} bytes (256 KB)"
        raise PolicyInvalid([PolicyError(line=1, path="", message=message)])
    # 1. Refuse what makes YAML dangerous (aliases, custom tags, deep nesting) before building anything.
    try:
        unsafe = _refuse_unsafe_yaml(text)
    except yaml.YAMLError as error:
        raise PolicyInvalid([_yaml_error(error)])
    if unsafe:
        raise PolicyInvalid(unsafe)
    # 2. Compose nodes (SafeLoader) so every value keeps the line it came from.
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise PolicyInvalid([PolicyError(line=1, path="", message="the policy document is empty")])
        located = _Located(loader=loader)
        data = located.build(root, "")
    except yaml.YAMLError as error:
        raise PolicyInvalid([_yaml_error(error)])
    finally:
        loader.dispose()
    # 3. Validate every section, collecting all errors before refusing.
    checker = _Checker(located=located)
    document = _validate(checker, data, source_text=text)
    if checker.errors or document is None:
        raise PolicyInvalid(checker.errors or [PolicyError(line=1, path="", message="the policy is invalid")])
    return document


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        message = f"the policy is not UTF-8 text (byte {raw[error.start]:#04x} at offset {error.start})"
        raise PolicyInvalid([PolicyError(line=line, path="", message=message)])


_TOP_LEVEL_REQUIRED = ("policy", "risk", "change_approval", "environments")
_TOP_LEVEL_OPTIONAL = ("traceability", "break_glass")


def _validate(checker: _Checker, data: Any, *, source_text: str) -> PolicyDocument | None:
    top = checker.mapping("", data, required=_TOP_LEVEL_REQUIRED, optional=_TOP_LEVEL_OPTIONAL)
    if top is None:
        return None
    name = checker.name("policy", top["policy"], what="policy") if "policy" in top else None
    risk = _read_risk(checker, top["risk"]) if "risk" in top else None
    tiers = tuple(rule.tier for rule in reversed(risk.tiers)) if risk is not None else None
    change_approval = (
        _read_change_approval(checker, top["change_approval"], tiers=tiers) if "change_approval" in top else None
    )
    environments = _read_environments(checker, top["environments"], tiers=tiers) if "environments" in top else None
    traceability = (
        _read_traceability(checker, top["traceability"])
        if top.get("traceability") is not None
        else TraceabilityRule(severities=MappingProxyType(dict(DEFAULT_GAP_SEVERITIES)))
    )
    break_glass = (
        _read_break_glass(checker, top["break_glass"])
        if top.get("break_glass") is not None
        else BreakGlassRule(roles=("sre",), retrospective_review_hours=24)
    )
    parts = (name, risk, change_approval, environments, traceability, break_glass)
    if any(part is None for part in parts):
        return None
    return PolicyDocument(
        name=name,
        risk=risk,
        change_approval=MappingProxyType(change_approval),
        environments=MappingProxyType(environments),
        traceability=traceability,
        break_glass=break_glass,
        source_text=source_text,
        sha256=hashlib.sha256(source_text.encode("utf-8")).hexdigest(),
    )


# ---------------------------------------------------------------------------------------------------------
# CEL


class _CelSyntaxError(CelError):
    """A CEL expression that does not parse; `line` is the line within the expression."""

    def __init__(self, message: str, *, line: int | None) -> None:
        super().__init__(message)
        self.line = line


_cel_lock = threading.Lock()
_cel_environment: celpy.Environment | None = None


def _environment() -> celpy.Environment:
    # One shared environment: building one raises the interpreter's recursion limit (cel-python does that
    # on purpose for deep expressions), and the lark grammar is loaded once. Only CEL's standard functions
    # are bound — no file, network or environment access exists in that set, and we add nothing.
    global _cel_environment
    with _cel_lock:
        if _cel_environment is None:
            _cel_environment = celpy.Environment()
        return _cel_environment


@lru_cache(maxsize=256)
def _compile_cel(expression: str) -> celpy.Runner:
    if len(expression) > MAX_CEL_LENGTH:
        raise CelError(f"the CEL expression is {len(expression)} characters; the limit is {MAX_CEL_LENGTH}")
    environment = _environment()
    try:
        ast = environment.compile(expression)
    except celpy.CELParseError as error:
        raise _CelSyntaxError(_cel_syntax_message(expression, error), line=error.line)
    except (lark.exceptions.LarkError, RecursionError) as error:
        raise _CelSyntaxError(f"CEL syntax error: {type(error).__name__}", line=None)
    return environment.program(ast)


def _cel_syntax_message(expression: str, error: celpy.CELParseError) -> str:
    lines = expression.splitlines() or [""]
    line = error.line or 1
    column = error.column or 1
    source = lines[line - 1] if 0 < line <= len(lines) else expression
    where = f"line {line} column {column}" if len(lines) > 1 else f"column {column}"
    near = source[column - 1 : column + 9].strip()
    hint = f"near {near!r}" if near else "the expression ends too early"
    return f"CEL syntax error at {where} of the expression: {source.strip()!r} ({hint})"


def _cel_eval_message(error: Exception) -> str:
    message = str(error.args[0]) if error.args else type(error).__name__
    # cel-python appends a dump of the whole activation to "undeclared reference" errors; keep the sentence.
    message = message.split(" (in activation", 1)[0]
    return _strip_nul(message)


def _to_cel(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and not math.isfinite(value):
            raise CelError(f"context value at {path} is not a finite number")
        return celpy.json_to_cel(_strip_nul(value) if isinstance(value, str) else value)
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CelError(f"context key {key!r} at {path or 'the top level'} must be text")
        return celpy.celtypes.MapType(
            {celpy.celtypes.StringType(_strip_nul(key)): _to_cel(item, f"{path}.{key}") for key, item in value.items()}
        )
    if isinstance(value, list | tuple):
        return celpy.celtypes.ListType([_to_cel(item, f"{path}[{index}]") for index, item in enumerate(value)])
    raise CelError(f"context value at {path} is {type(value).__name__}; only JSON-like data can reach CEL")


def evaluate_cel(expression: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a CEL condition against plain JSON-like data; raises CelError unless it yields true or false."""
    if not isinstance(expression, str):
        raise CelError(f"a CEL expression must be text, not {type(expression).__name__}")
    if not isinstance(context, Mapping):
        raise CelError(f"the CEL context must be a mapping of variable names, not {type(context).__name__}")
    program = _compile_cel(expression)
    activation = {}
    for name, value in context.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise CelError(f"context variable {name!r} is not a CEL identifier")
        activation[name] = _to_cel(value, name)
    try:
        result = program.evaluate(activation)
    except celpy.CELEvalError as error:
        raise CelError(f"CEL evaluation failed: {_cel_eval_message(error)} (expression: {expression!r})")
    except RecursionError:
        raise CelError(f"CEL evaluation nested too deeply (expression: {expression!r})")
    except Exception as error:
        # cel-python documents that other exceptions signal an interpreter problem; still refuse clearly.
        raise CelError(f"CEL evaluation failed: {type(error).__name__}: {error} (expression: {expression!r})")
    if isinstance(result, celpy.CELEvalError):
        raise CelError(f"CEL evaluation failed: {_cel_eval_message(result)} (expression: {expression!r})")
    # cel-python's BoolType subclasses int (bool cannot be subclassed), so test the CEL type.
    if isinstance(result, celpy.celtypes.BoolType):
        return bool(result)
    raise CelError(
        f"the CEL expression must produce true or false, but produced {_cel_type_name(result)} "
        f"({result!r}) (expression: {expression!r})"
    )


def _cel_type_name(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__.removesuffix("Type").lower()


# ---------------------------------------------------------------------------------------------------------
# The demo product's policy

DEFAULT_POLICY_YAML = """\
# Change-control policy for rsd, the "Risk Score Dashboard": a medical SaaS that shows clinicians a risk
# score computed from patient data. IEC 62304 software safety class B (a failure could contribute to
# non-serious injury through a wrong or missing score).
#
# Custody applies this file to every change request and every promotion of rsd. Each decision records
# which version of this file it used (its sha256). Changing this file is itself a change that needs
# approval.
policy: rsd

# 1. Risk classification of change requests.
# The release manager answers each question when opening a change request; Custody adds up the weights
# of the answers and the total decides the tier. Nobody types a tier by hand.
risk:
  questions:
    # Could the change affect a score a clinician relies on?
    patient_safety_impact: {none: 0, indirect: 2, direct: 4}
    # Does the change touch personal health information (PHI)?
    data_sensitivity: {none: 0, internal: 1, phi: 2}
    # How noticeable is the change to users?
    user_impact: {none: 0, minor: 1, major: 2}
    # How hard is it to undo if it goes wrong?
    rollback_complexity: {trivial: 0, moderate: 1, hard: 2}
  # A change falls in the riskiest tier whose min_score its total reaches (maximum possible total: 10).
  tiers:
    - {tier: critical, min_score: 7}
    - {tier: high, min_score: 4}
    - {tier: medium, min_score: 2}
    - {tier: low, min_score: 0}

# 2. Who approves a change request before work on it may be released.
# count is the number of different people who must sign; one person counts once however many roles
# they hold. Low-risk changes are approved automatically, and that decision is recorded.
change_approval:
  low: {auto: true}
  medium: {roles: [quality], count: 1}
  high: {roles: [quality, security], count: 2}
  critical: {roles: [quality, security, product], count: 3}

# 3. Environments, in promotion order. The same artifact digests move from one to the next: a release is
# promoted, never rebuilt. Gates are checked automatically on the evidence CI uploaded; a blocking gate
# that fails stops the promotion, an informational one (blocking: false) is shown to reviewers.
environments:
  integration:
    gates:
      - {id: unit-tests, kind: tests, max_failed: 0, blocking: true,
         description: "Every automated test passed"}
      - {id: sbom, kind: sbom, blocking: false,
         description: "A software bill of materials was uploaded (needed later for production)"}

  staging:
    after: integration                  # only digests already promoted to integration
    gates:
      - {id: unit-tests, kind: tests, max_failed: 0, blocking: true}
      - {id: critical-vulns, kind: vulnerabilities, max: {critical: 0}, blocking: true,
         description: "No known critical vulnerability in the shipped components"}
      - {id: change-requests, kind: change_requests, blocking: true,
         description: "Every change request delivered by the release is approved"}

  production:
    after: staging                      # the digest must have been promoted to staging first
    # Signatures (21 CFR Part 11 electronic signatures) needed for a promotion, by the release's tier:
    # the riskiest tier among the change requests it delivers. Each role listed needs one signer.
    approval:
      roles_by_tier:
        low: [quality]
        medium: [quality]
        high: [quality, security]
        critical: [quality, security, product]
      valid_for_hours: 72               # approvals older than this must be signed again
    gates:
      - {id: signed, kind: signature, blocking: true,
         description: "The artifact carries a verified signature from a registered key"}
      - id: provenance
        kind: provenance
        description: "The artifact was built by the release pipeline from the rsd repository (SLSA)"
        builder_ids:
          - "https://github.com/acme/rsd/.github/workflows/release.yml@refs/heads/main"
          - "https://ci.example/acme/rsd/release.yml@refs/heads/main"
        blocking: true
      - {id: tests, kind: tests, max_failed: 0, min_total: 1, blocking: true,
         description: "Tests ran and none failed"}
      - {id: critical-vulns, kind: vulnerabilities, max: {critical: 0, high: 0}, blocking: true,
         description: "No known critical or high vulnerability"}
      - {id: medium-vulns, kind: vulnerabilities, max: {medium: 0}, blocking: false,
         description: "Medium vulnerabilities, for the reviewers' judgement"}
      - {id: licences, kind: licenses, deny: [AGPL-3.0-only, GPL-3.0-only], blocking: true,
         description: "No component under a licence incompatible with distributing rsd"}
      - {id: coverage, kind: coverage, min_line_rate: 0.80, blocking: false,
         description: "At least 80% of lines covered by tests"}
      - {id: trace, kind: traceability, require: [requirements_tested, risk_controls_verified], blocking: true,
         description: "Every requirement is tested and every risk control verified (IEC 62304 5.7, ISO 14971)"}
      - {id: sbom, kind: sbom, blocking: true,
         description: "A software bill of materials is on file for the artifact"}
      - {id: change-requests, kind: change_requests, blocking: true,
         description: "Every change request delivered by the release is approved"}
      # An example of a condition written in CEL, shown to reviewers but not blocking: few skipped tests.
      - id: few-skipped-tests
        kind: cel
        expression: "tests.skipped * 10 <= tests.total"
        description: "No more than 10% of the tests were skipped"
        blocking: false

# 4. How gaps in the trace matrix (requirement -> test, hazard -> risk control -> test) are treated.
traceability:
  severities:
    missing_test: error               # a requirement with no test
    not_executed: warning             # a linked test that did not run in this release
    failed: error                     # a linked test that failed
    risk_control_unverified: error    # a risk control whose tests did not all pass
    orphan_test: warning              # a test that names no requirement
    suspect: warning                  # the requirement changed after the test was linked

# 5. Emergencies. An SRE may deploy without the approvals above; Custody records it, alerts at once, and
# requires a retrospective review (a change request with its approvals) within the window below.
break_glass: {roles: [sre], retrospective_review_hours: 24}
"""
