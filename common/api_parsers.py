"""Request bodies Custody can store, or a 400 saying what to fix (DESIGN §7: bad input is 400, never a 500).

Every API body goes through these parsers (settings REST_FRAMEWORK DEFAULT_PARSER_CLASSES); query strings and
paths are checked by middleware.RefuseUnstorableInputMiddleware with the same rule. Checking once at the door
keeps every endpoint, present and future, from turning odd text into a database error.
"""

from __future__ import annotations

import codecs
import re

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from common.safe_formats import MAX_JSON_DEPTH, TOO_DEEP, UnreadableDocument, decode_json, json_type_name

# PostgreSQL text and jsonb cannot hold NUL, and UTF-8 (the database encoding) cannot hold an unpaired UTF-16
# surrogate, which JSON can still spell as "\ud800". Either would fail at the INSERT as a server error.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# For readers that drop NUL themselves (requirement imports): only the surrogates are refused.
SURROGATES = re.compile("[\ud800-\udfff]")


def _escaped(text: str, limit: int = 120) -> str:
    """The text as a person can read it in an error: NUL and surrogates written as \\uXXXX, long text cut."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", shown)


def unstorable_reason(text: str, refused: re.Pattern = UNSTORABLE) -> str | None:
    """Why this text cannot be stored, or None when it can."""
    match = refused.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains an unpaired UTF-16 surrogate (\\u{ord(match.group()):04x})"


def refusal(where: str, reason: str) -> str:
    return f"{where} {reason}, which Custody cannot store: remove it and send the request again"


def check_json(data, *, refused: re.Pattern = UNSTORABLE) -> None:
    """Refuse NUL or unpaired surrogates (the `refused` pattern) in any key or string, and nesting deeper than
    MAX_JSON_DEPTH."""
    if not _storable(data, refused):
        _refuse_where(data, refused)


def _storable(data, refused: re.Pattern) -> bool:
    """The check every JSON body pays for, so it stays cheap: level by level, one regex search over each level's
    keys and strings, no paths kept. Iterative: a recursive walk would be the stack overflow the limit prevents."""
    level, depth = [data], 1
    while level:
        if depth > MAX_JSON_DEPTH:
            return False
        below, texts = [], []
        for value in level:
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, dict):
                texts.extend(value)
                below.extend(value.values())
            elif isinstance(value, list):
                below.extend(value)
        if refused.search("".join(texts)):
            return False
        level, depth = below, depth + 1
    return True


def _refuse_where(data, refused: re.Pattern) -> None:
    """Walk again, keeping paths, to say where the problem is (only for a body already found wanting)."""
    pending = [(data, "", 1)]
    while pending:
        value, where, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ParseError(TOO_DEEP)
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else key
                reason = unstorable_reason(key, refused)
                if reason:
                    raise ParseError(refusal(f"the JSON key '{_escaped(path)}'", reason))
                pending.append((item, path, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str):
            reason = unstorable_reason(value, refused)
            if reason:
                where = f"the JSON value of '{_escaped(where)}'" if where else "the JSON body"
                raise ParseError(refusal(where, reason))


def unstorable_field(fields, *, kind: str) -> str | None:
    """What to fix when the name or a value of a form field or query parameter (a QueryDict) holds NUL."""
    for name, values in fields.lists():
        for text in (name, *values):
            reason = unstorable_reason(text)
            if reason:
                return refusal(f"the {kind} '{_escaped(name)}'", reason)
    return None


class JSONParser(parsers.JSONParser):
    """A JSON body is one object (every operation of the API reads named fields), read by decode_json's rules."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except UnicodeDecodeError as exc:
            raise ParseError(f"the body is not {encoding} text (byte {exc.start}): send UTF-8 JSON") from None
        try:
            data = decode_json(text)
        except UnreadableDocument as exc:
            raise ParseError(str(exc)) from None
        if not isinstance(data, dict):
            raise ParseError(f"the JSON body must be an object ({{...}}) of named fields, not {json_type_name(data)}")
        check_json(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        problem = unstorable_field(data, kind="form field")
        if problem:
            raise ParseError(problem)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """Checks the text fields only: uploaded files are stored as bytes, and may hold anything.

    A view that reads parts once each names them in `single_parts`: a part sent twice is a 400 naming it (Django
    would keep the last silently, so which of two files was stored would depend on their order)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        problem = unstorable_field(parsed.data, kind="form field")
        if problem:
            raise ParseError(problem)
        view = (parser_context or {}).get("view")
        for name in getattr(view, "single_parts", ()):
            count = len(parsed.data.getlist(name)) + len(parsed.files.getlist(name))
            if count > 1:
                raise ParseError(f"the multipart part '{name}' is sent {count} times; send it once")
        return parsed
