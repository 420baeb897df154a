"""Policy-as-code (DESIGN §5): one product's policy document, read and validated, scoring risk, deciding gates.

`document` holds the vocabulary and the rules as read; `reader` reads and validates YAML (every problem by line);
`cel` evaluates conditions; `demo_policy.yaml` is the demo product's policy and the default a new product starts with.
"""

from __future__ import annotations

from pathlib import Path

from changecontrol.policy.cel import MAX_CEL_LENGTH, CelError, evaluate_cel
from changecontrol.policy.checker import MAX_HOURS, MAX_NESTING, MAX_POLICY_BYTES
from changecontrol.policy.document import (
    DEFAULT_GAP_SEVERITIES,
    DEFAULT_POLICY_PROPOSER_ROLES,
    EVIDENCE_TYPES,
    GAP_SEVERITIES,
    GATE_KINDS,
    ROLES,
    SEVERITIES,
    TRACE_GAPS,
    TRACE_SCOPES,
    TRACEABILITY_REQUIREMENTS,
    ApprovalRule,
    BreakGlassRule,
    ChangeApprovalRule,
    EnvironmentRule,
    GateRule,
    PolicyChangesRule,
    PolicyDocument,
    PolicyError,
    PolicyInvalid,
    RiskAnswersInvalid,
    RiskModel,
    RiskResult,
    TestsRule,
    TierRule,
    TraceabilityRule,
    UnknownPolicyName,
)
from changecontrol.policy.reader import parse_policy

DEFAULT_POLICY_YAML = (Path(__file__).parent / "demo_policy.yaml").read_text(encoding="utf-8")

__all__ = [
    "DEFAULT_POLICY_PROPOSER_ROLES",
    "DEFAULT_GAP_SEVERITIES",
    "DEFAULT_POLICY_YAML",
    "EVIDENCE_TYPES",
    "GAP_SEVERITIES",
    "GATE_KINDS",
    "MAX_CEL_LENGTH",
    "MAX_HOURS",
    "MAX_NESTING",
    "MAX_POLICY_BYTES",
    "ROLES",
    "SEVERITIES",
    "TRACEABILITY_REQUIREMENTS",
    "TRACE_GAPS",
    "TRACE_SCOPES",
    "ApprovalRule",
    "BreakGlassRule",
    "CelError",
    "ChangeApprovalRule",
    "EnvironmentRule",
    "GateRule",
    "PolicyDocument",
    "PolicyError",
    "PolicyInvalid",
    "RiskAnswersInvalid",
    "RiskModel",
    "RiskResult",
    "PolicyChangesRule",
    "TestsRule",
    "TierRule",
    "TraceabilityRule",
    "UnknownPolicyName",
    "evaluate_cel",
    "parse_policy",
]
