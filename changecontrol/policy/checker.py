"""Reading a policy's YAML with line numbers, refusing what is unsafe, and the checker every section reader uses:
it records each problem with its line and path instead of stopping at the first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import yaml

from changecontrol.policy.document import (
    ROLES,
    PolicyError,
    kind_of,
    strip_nul,
)

MAX_POLICY_BYTES = 256 * 1024
# Real policies nest five or six levels; the cap keeps a hostile document from exhausting the recursion
# of the composer and of the validator below.
MAX_NESTING = 32
MAX_HOURS = 24 * 365
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# SPDX allows custom identifiers of this shape (SPDX 2.3 §10.1); the licence list cannot know them.
LICENSE_REF = re.compile(r"^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")
# The characters of an SPDX short identifier (`GPL-2.0+` included); anything else is not worth asking about.
SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
STANDARD_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map"))


# ---------------------------------------------------------------------------------------------------------
# Reading YAML with line numbers


def yaml_error(error: yaml.YAMLError) -> PolicyError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    message = problem or str(error).splitlines()[0]
    if problem and context:
        message = f"{context}, {problem}"
    return PolicyError(line=line, path="", message=strip_nul(f"YAML syntax error: {message}"))


def refuse_unsafe_yaml(text: str) -> list[PolicyError]:
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
        if tag is not None and tag not in STANDARD_TAGS:
            message = f"YAML tag {tag} is not allowed; only plain text, numbers, booleans, lists and mappings"
            errors.append(PolicyError(line=line, path="", message=strip_nul(message)))
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                message = f"the document nests deeper than {MAX_NESTING} levels"
                return [*errors, PolicyError(line=line, path="", message=message)]
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return errors


class Located:
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
                key = strip_nul(key_node.value)
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
        return strip_nul(value) if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------------------
# Validation helpers


class Checker:
    """Collects every validation error with the line of the offending key or value."""

    def __init__(self, *, located: Located) -> None:
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
            probe = parent_path(probe)

    def error(self, path: str, message: str, *, key: bool = False) -> None:
        self.errors.append(PolicyError(line=self.line_of(path, key=key), path=path, message=strip_nul(message)))

    def mapping(
        self, path: str, value: Any, *, required: Iterable[str] = (), optional: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        """The value as a mapping with only the allowed keys; None (after reporting) when it is not one."""
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {kind_of(value)}")
            return None
        required = tuple(required)
        allowed = (*required, *optional)
        # With no keys named, the keys are the author's own names (questions, tiers, environments).
        for key in value if allowed else ():
            if key not in allowed:
                self.error(join_path(path, key), f"unknown key {key!r} (allowed: {', '.join(allowed)})", key=True)
        for key in required:
            if key not in value:
                self.error(path, f"missing required key {key!r}", key=True)
        return value

    def name(self, path: str, value: Any, *, what: str) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"expected a {what} name, got {kind_of(value)} (quote it if YAML read it as another type)")
            return None
        if not NAME.match(value):
            self.error(
                path,
                f"{what} name {value!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
            return None
        return value

    def text(self, path: str, value: Any, *, allow_empty: bool = False) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"expected text, got {kind_of(value)}")
            return None
        if not allow_empty and not value.strip():
            self.error(path, "must not be empty")
            return None
        return value

    def integer(self, path: str, value: Any, *, minimum: int, maximum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected a whole number, got {kind_of(value)}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
            self.error(path, f"must be {bounds}, got {value}")
            return None
        return value

    def rate(self, path: str, value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error(path, f"expected a number from 0 to 1, got {kind_of(value)}")
            return None
        if not 0 <= value <= 1:
            hint = " (write rates as fractions: 0.8 for 80%)" if 1 < value <= 100 else ""
            self.error(path, f"must be from 0 to 1, got {value}{hint}")
            return None
        return float(value)

    def boolean(self, path: str, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {kind_of(value)}")
            return None
        return value

    def items(self, path: str, value: Any, *, non_empty: bool) -> list[Any] | None:
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {kind_of(value)}")
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
                self.error(entry_path, f"{kind_of(entry)} is not a known {what} ({what}s: {', '.join(allowed)})")
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


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rsplit(".", 1)[0] if "." in path else ""
