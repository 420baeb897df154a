"""Reading a policy document (DESIGN §5): parse_policy turns YAML into a PolicyDocument, or refuses it with every
problem listed by line.
"""

from __future__ import annotations

import hashlib
from types import MappingProxyType
from typing import Any

import yaml

from changecontrol.policy.checker import MAX_POLICY_BYTES, Checker, Located, refuse_unsafe_yaml, yaml_error
from changecontrol.policy.document import (
    DEFAULT_GAP_SEVERITIES,
    BreakGlassRule,
    PolicyChangesRule,
    PolicyDocument,
    PolicyError,
    PolicyInvalid,
    TestsRule,
    TraceabilityRule,
)
from changecontrol.policy.sections import (
    read_break_glass,
    read_change_approval,
    read_environments,
    read_policy_changes,
    read_risk,
    read_tests,
    read_traceability,
)


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
        unsafe = refuse_unsafe_yaml(text)
    except yaml.YAMLError as error:
        raise PolicyInvalid([yaml_error(error)])
    if unsafe:
        raise PolicyInvalid(unsafe)
    # 2. Compose nodes (SafeLoader) so every value keeps the line it came from.
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise PolicyInvalid([PolicyError(line=1, path="", message="the policy document is empty")])
        located = Located(loader=loader)
        data = located.build(root, "")
    except yaml.YAMLError as error:
        raise PolicyInvalid([yaml_error(error)])
    finally:
        loader.dispose()
    # 3. Validate every section, collecting all errors before refusing.
    checker = Checker(located=located)
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
_TOP_LEVEL_OPTIONAL = ("traceability", "break_glass", "tests", "policy_changes")


def _validate(checker: Checker, data: Any, *, source_text: str) -> PolicyDocument | None:
    top = checker.mapping("", data, required=_TOP_LEVEL_REQUIRED, optional=_TOP_LEVEL_OPTIONAL)
    if top is None:
        return None
    name = checker.name("policy", top["policy"], what="policy") if "policy" in top else None
    risk = read_risk(checker, top["risk"]) if "risk" in top else None
    tiers = tuple(rule.tier for rule in reversed(risk.tiers)) if risk is not None else None
    change_approval = (
        read_change_approval(checker, top["change_approval"], tiers=tiers) if "change_approval" in top else None
    )
    environments = read_environments(checker, top["environments"], tiers=tiers) if "environments" in top else None
    traceability = (
        read_traceability(checker, top["traceability"])
        if top.get("traceability") is not None
        else TraceabilityRule(severities=MappingProxyType(dict(DEFAULT_GAP_SEVERITIES)))
    )
    break_glass = (
        read_break_glass(checker, top["break_glass"])
        if top.get("break_glass") is not None
        else BreakGlassRule(roles=("sre",), retrospective_review_hours=24)
    )
    tests = read_tests(checker, top["tests"], tiers=tiers) if top.get("tests") is not None else TestsRule()
    policy_changes = (
        read_policy_changes(checker, top["policy_changes"])
        if top.get("policy_changes") is not None
        else PolicyChangesRule()
    )
    parts = (name, risk, change_approval, environments, traceability, break_glass, tests, policy_changes)
    if any(part is None for part in parts):
        return None
    return PolicyDocument(
        name=name,
        risk=risk,
        change_approval=MappingProxyType(change_approval),
        environments=MappingProxyType(environments),
        traceability=traceability,
        break_glass=break_glass,
        tests=tests,
        policy_changes=policy_changes,
        source_text=source_text,
        sha256=hashlib.sha256(source_text.encode("utf-8")).hexdigest(),
    )
