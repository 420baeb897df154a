"""Witnesses: each signed checkpoint is also published outside the database (DESIGN §6, docs/operations.md).

Whoever owns the database can delete checkpoints, or rewrite the chain and have the next checkpoint sign the
rewrite. A witness the database owner does not control keeps every checkpoint as it was signed, so `verify_audit
--witness` can name one that was removed or altered. Three kinds, named by URI in CUSTODY_AUDIT_WITNESSES:

- `file:/path/checkpoints.jsonl` — an append-only JSON-lines file, meant for another volume (object-locked storage,
  another host's mount): one line per checkpoint, fsynced;
- `git:/path/repository` — the same file committed to a git repository, one commit per checkpoint, pushed to its
  `origin` when it has one (a repository on another host, with protected history);
- `http(s)://…` — a webhook receiver that keeps what it is sent: POST one checkpoint as JSON, GET all of them as a
  JSON list (`custody witness serve` is one; any service keeping the same contract will do).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from changecontrol.models import AuditCheckpoint

ENTRY_FORMAT = "custody-audit-checkpoint/1"
FILE_NAME = "checkpoints.jsonl"
HTTP_TIMEOUT_SECONDS = 10


class WitnessUnavailable(Exception):
    """The witness could not be reached, read or written (the message says why)."""


def checkpoint_entry(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """What a witness keeps of a checkpoint: everything needed to check Custody's signature offline."""
    return {
        "format": ENTRY_FORMAT,
        "checkpoint": checkpoint.pk,
        "event_id": checkpoint.event_id,
        "event_hash": checkpoint.event_hash,
        "event_count": checkpoint.event_count,
        "created_at": checkpoint.created_at.isoformat(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "statement": checkpoint.statement().decode(),
    }


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _read_lines(data: bytes, *, where: str) -> list[dict[str, Any]]:
    entries = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise WitnessUnavailable(f"{where} line {number} is not JSON: the file was damaged") from None
    return entries


def _already_holds(entries: list[dict[str, Any]], entry: dict[str, Any], *, where: str) -> bool:
    """Whether the witness holds this checkpoint already; a different copy of it is refused, never overwritten."""
    for held in entries:
        if held.get("checkpoint") == entry["checkpoint"]:
            if held != entry:
                raise WitnessUnavailable(f"{where} already holds a different checkpoint {entry['checkpoint']}")
            return True
    return False


@dataclass(frozen=True)
class FileWitness:
    """An append-only JSON-lines file."""

    uri: str
    path: Path

    def publish(self, entry: dict[str, Any]) -> bool:
        """Append the entry; False when the file already holds it (a retried publication appends nothing)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as handle:
                # Two workers publishing at once append whole lines, one after the other.
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.seek(0)
                if _already_holds(_read_lines(handle.read(), where=str(self.path)), entry, where=str(self.path)):
                    return False
                handle.write(_line(entry))
                handle.flush()
                os.fsync(handle.fileno())
                return True
        except OSError as error:
            raise WitnessUnavailable(f"cannot append to {self.path}: {error.strerror or error}") from None

    def entries(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise WitnessUnavailable(f"cannot read {self.path}: {error.strerror or error}") from None
        return _read_lines(data, where=str(self.path))


@dataclass(frozen=True)
class GitWitness:
    """The JSON-lines file in a git repository: one commit per checkpoint, pushed to `origin` when there is one."""

    uri: str
    repository: Path

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        environment = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Custody",
            "GIT_AUTHOR_EMAIL": "custody@localhost",
            "GIT_COMMITTER_NAME": "Custody",
            "GIT_COMMITTER_EMAIL": "custody@localhost",
        }
        try:
            return subprocess.run(  # noqa: S603 - fixed argument list, no shell
                ["git", "-C", str(self.repository), *args],  # noqa: S607 - git from PATH, as operators install it
                capture_output=True,
                check=check,
                env=environment,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", b"") or b""
            raise WitnessUnavailable(
                f"git {args[0]} in {self.repository} failed: {detail.decode(errors='replace').strip() or error}"
            ) from None

    def publish(self, entry: dict[str, Any]) -> None:
        if not (self.repository / ".git").exists():
            self.repository.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet")
        FileWitness(uri=self.uri, path=self.repository / FILE_NAME).publish(entry)
        self._git("add", FILE_NAME)
        if self._git("diff", "--cached", "--quiet", check=False).returncode != 0:  # a retry may find it committed
            message = f"Custody audit checkpoint {entry['checkpoint']} (event #{entry['event_id']})"
            self._git("commit", "--quiet", "-m", message)
        if b"origin" in self._git("remote", check=False).stdout.split():
            self._git("push", "--quiet", "origin", "HEAD")

    def entries(self) -> list[dict[str, Any]]:
        # What was committed, not the working tree: an edit that was never committed is not the witness's word.
        shown = self._git("show", f"HEAD:{FILE_NAME}", check=False)
        if shown.returncode != 0:
            if not (self.repository / ".git").exists():
                raise WitnessUnavailable(f"{self.repository} is not a git repository")
            return []
        return _read_lines(shown.stdout, where=f"{self.repository}:{FILE_NAME}")


@dataclass(frozen=True)
class HttpWitness:
    """A webhook receiver that keeps what it is sent."""

    uri: str
    token: str = ""

    def _request(self, *, method: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.uri, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
                return response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            raise WitnessUnavailable(f"{method} {self.uri} answered {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            raise WitnessUnavailable(f"{method} {self.uri} failed: {getattr(error, 'reason', error)}") from None

    def publish(self, entry: dict[str, Any]) -> None:
        self._request(method="POST", body=_line(entry))

    def entries(self) -> list[dict[str, Any]]:
        body = self._request(method="GET")
        try:
            entries = json.loads(body)
        except ValueError:
            raise WitnessUnavailable(f"GET {self.uri} did not answer JSON") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "checkpoint" in e for e in entries):
            raise WitnessUnavailable(f"GET {self.uri} did not answer a list of checkpoints")
        return entries


Witness = FileWitness | GitWitness | HttpWitness


def witness_for(uri: str) -> Witness:
    """The witness a URI names; a clear error for one Custody does not know."""
    if uri.startswith("file:"):
        return FileWitness(uri=uri, path=Path(uri.removeprefix("file:").removeprefix("//")))
    if uri.startswith("git:"):
        return GitWitness(uri=uri, repository=Path(uri.removeprefix("git:").removeprefix("//")))
    if uri.startswith(("http://", "https://")):
        return HttpWitness(uri=uri, token=settings.CUSTODY_AUDIT_WITNESS_TOKEN)
    raise ValueError(f"witness {uri!r} is not a file:, git: or http(s):// URI")


def configured() -> list[Witness]:
    return [witness_for(uri) for uri in settings.CUSTODY_AUDIT_WITNESSES]


def checkpoint_publish(checkpoint: AuditCheckpoint, witnesses: list[Witness] | None = None) -> dict[str, str]:
    """Publish one checkpoint to every witness; {witness URI: why it failed} for those that did not take it."""
    entry = checkpoint_entry(checkpoint)
    failures = {}
    for witness in configured() if witnesses is None else witnesses:
        try:
            witness.publish(entry)
        except WitnessUnavailable as error:
            failures[witness.uri] = str(error)
    return failures


def failure_record(checkpoint: AuditCheckpoint, failures: dict[str, str]) -> None:
    """Record that witnesses refused a checkpoint after every retry (alerted to every product's subscribers)."""
    from django.db import transaction

    from changecontrol import audit

    with transaction.atomic():
        audit.record(
            actor=None,
            action="audit.witness_failed",
            obj=checkpoint,
            after={"checkpoint": checkpoint.pk, "event": checkpoint.event_id, "failures": failures},
            reason="; ".join(f"{uri}: {why}" for uri, why in sorted(failures.items())),
        )
