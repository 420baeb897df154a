"""CEL conditions of a policy (DESIGN §5): compiled once, evaluated side-effect free over the release's facts.

A condition cannot read the environment or the network; it must produce true or false.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import celpy
import lark

from changecontrol.policy.document import strip_nul

MAX_CEL_LENGTH = 4096


class CelError(Exception):
    """A CEL expression could not be compiled or evaluated, or did not produce true or false."""


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
    return strip_nul(message)


def _to_cel(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and not math.isfinite(value):
            raise CelError(f"context value at {path} is not a finite number")
        return celpy.json_to_cel(strip_nul(value) if isinstance(value, str) else value)
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CelError(f"context key {key!r} at {path or 'the top level'} must be text")
        return celpy.celtypes.MapType(
            {celpy.celtypes.StringType(strip_nul(key)): _to_cel(item, f"{path}.{key}") for key, item in value.items()}
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
