"""CI intake in one line per step: `custody build register`, `custody artifact register`, `custody evidence upload`.

Only the public API (DESIGN §7): ``POST /api/v1/products/{product}/builds``, ``POST
/api/v1/products/{product}/artifacts``, ``POST /api/v1/artifacts/{digest}/evidence`` (multipart, built here with
the standard library) and ``GET`` of the evidence's ``status_url``. Standard output carries only what a script
captures — the build id, the artifact digest, the evidence id, or with ``--json`` the server's document — and
everything meant for a person goes to standard error.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from common.digests import is_digest
from custody_cli import api
from custody_cli.api import Refused, ServerError, UsageError

EXIT_STILL_PROCESSING = 2  # like `custody gate`'s "pending": not a failure yet, but not done either
EVIDENCE_WAIT_SECONDS = 600.0
# Most reports parse within a second, so ask soon, then back off to spare the server during a long queue.
EVIDENCE_FIRST_POLL_SECONDS = 0.5
EVIDENCE_MAX_POLL_SECONDS = 5.0
# `superseded`: parsed, but another copy of the same file (a signed one, say) counts instead.
FINISHED_STATES = ("parsed", "rejected", "failed", "superseded")
EVIDENCE_TYPES = "junit cobertura lcov jacoco sarif cyclonedx spdx grype trivy osv openvex dsse cosign generic"
_PRODUCT_KEY = re.compile(r"[-a-zA-Z0-9_]+")
_COMMIT_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
_FIELD_SEPARATOR = "\x1f"


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _connection(args) -> tuple[str, str]:
    base_url = api.setting(args.url, env="CUSTODY_URL", option="--url")
    token = api.setting(args.token, env="CUSTODY_TOKEN", option="--token")
    api.api_url(base_url=base_url, path="/")  # a malformed URL is a usage error before any work is done
    return base_url, token


def _required_text(value: str, option: str) -> str:
    if not value.strip():
        raise UsageError(f"{option} must not be empty")
    return value.strip()


def _product_key(value: str) -> str:
    if not _PRODUCT_KEY.fullmatch(value.strip()):
        raise UsageError(f"--product must be a product key such as rsd (letters, digits, '-' and '_'), not {value!r}")
    return value.strip()


def _artifact_digest(value: str, option: str = "--artifact") -> str:
    if not is_digest(value.strip().lower()):
        raise UsageError(f"{option} must be sha256:<64 hex characters>, not {value!r}")
    return value.strip().lower()


def _text_field(document: dict[str, Any], key: str, *, what: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ServerError(f"Custody's answer for the {what} has no {key!r}: {json.dumps(document)[:300]}")
    return value


def _emit(document: dict[str, Any], value: str, *, as_json: bool) -> None:
    print(json.dumps(document, indent=2, sort_keys=True) if as_json else value, flush=True)


def _post_json(*, args, path: str, document: dict[str, Any], not_found_hint: str) -> tuple[int, dict[str, Any]]:
    base_url, token = _connection(args)
    return api.call(
        method="POST",
        url=api.api_url(base_url=base_url, path=path),
        token=token,
        body=json.dumps(document).encode("utf-8"),
        content_type="application/json",
        not_found_hint=not_found_hint,
    )


# build register -------------------------------------------------------------------------------------------


def _git(args: list[str], *, cwd: str | None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], capture_output=True, cwd=cwd, timeout=60, check=False)
    except FileNotFoundError:
        raise UsageError("--commits-from-git needs git on the PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"--commits-from-git: git {args[0]} took longer than 60 s") from None


def _is_commit(revision: str, *, cwd: str | None) -> bool:
    return _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=cwd).returncode == 0


def _log_revisions(revision_range: str, *, cwd: str | None) -> list[str]:
    """What to pass to `git log` for `revision_range`: the range, or only its last commit when it has no start."""
    start, dots, end = revision_range.partition("..")
    end = end.lstrip(".") or "HEAD"  # BEFORE...SHA reads as BEFORE..SHA
    if revision_range.startswith("-") or end.startswith("-"):
        raise UsageError(f"--commits-from-git takes a revision range such as BEFORE..SHA, not {revision_range!r}")
    if not dots:
        return ["-1", revision_range]  # one revision names one commit, not its whole history
    if not start.strip("0"):
        # GitHub (`github.event.before`) and GitLab (`CI_COMMIT_BEFORE_SHA`) send zeros, or nothing, when there is
        # no previous commit (a new branch, a manual run): the commit that was built is the one to list.
        return ["-1", end]
    if not _is_commit(end, cwd=cwd):
        return [f"{start}..{end}"]  # git log names the problem (not a repository, unknown revision)
    if not _is_commit(start, cwd=cwd):
        # A force-push leaves the old tip out of the clone; failing would stop the pipeline over what it cannot fix.
        _note(
            f"warning: --commits-from-git: {start} is not in this clone (a shallow clone needs fetch-depth: 0 / "
            f"GIT_DEPTH: 0; or a force-push removed it); listing {end} only"
        )
        return ["-1", end]
    return [f"{start}..{end}"]


def commits_from_git(revision_range: str, *, cwd: str | None = None) -> list[dict[str, str]]:
    """The commits of `revision_range` as the build API takes them, read with `git log` (newest first)."""
    revisions = _log_revisions(revision_range.strip(), cwd=cwd)
    result = _git(["log", "-z", "--no-color", "--format=%H%x1f%ae%x1f%an%x1f%B", *revisions, "--"], cwd=cwd)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise UsageError(
            f"--commits-from-git {revision_range}: git log failed: {reason[0] if reason else result.returncode} "
            "(is the history there? a shallow clone needs fetch-depth: 0 / GIT_DEPTH: 0)"
        )
    commits = []
    for record in result.stdout.decode("utf-8", errors="replace").split("\x00"):
        fields = record.strip("\n").split(_FIELD_SEPARATOR, 3)
        if len(fields) != 4:
            continue
        sha, email, name, message = fields
        commits.append({"sha": sha, "author_email": email, "author_name": name, "message": message.strip()})
    return commits


def _build_register_command(args) -> int:
    product = _product_key(args.product)
    commit = args.commit.strip()
    if not _COMMIT_SHA.fullmatch(commit):
        raise UsageError(f"--commit must be a git commit SHA (7 to 64 hex characters), not {args.commit!r}")
    document: dict[str, Any] = {
        "commit": commit,
        "branch": _required_text(args.branch, "--branch"),
        "pipeline_url": _required_text(args.pipeline_url, "--pipeline-url"),
        "ci_system": _required_text(args.ci_system, "--ci-system"),
    }
    if args.build_number:
        document["build_number"] = args.build_number.strip()
    if args.builder_identity:
        document["builder_identity"] = args.builder_identity.strip()
    if args.commits_from_git:
        document["commits"] = commits_from_git(args.commits_from_git)
    status, build = _post_json(
        args=args,
        path=f"/api/v1/products/{product}/builds",
        document=document,
        not_found_hint=f"no product {product!r} that this token may see: check --product and the token's products",
    )
    # A known pipeline URL with another commit is the server's 409 (two runs sharing one URL), exit 1 above.
    build_id = _text_field(build, "id", what="build")
    if status == 201:
        listed = f", {len(document['commits'])} commit(s) listed" if "commits" in document else ""
        _note(f"registered build {build_id} of {product} (commit {commit[:12]}, branch {document['branch']}{listed})")
    else:
        _note(f"build {build_id} was already registered for this pipeline URL; Custody kept it unchanged")
    _emit(build, build_id, as_json=args.json)
    return 0


# artifact register ----------------------------------------------------------------------------------------


def _artifact_register_command(args) -> int:
    product = _product_key(args.product)
    document = {
        "name": _required_text(args.name, "--name"),
        "digest": _artifact_digest(args.digest, "--digest"),
        "build": _required_text(args.build, "--build"),
        "kind": _required_text(args.kind, "--kind"),
    }
    if args.uri:
        document["uri"] = args.uri.strip()
    status, artifact = _post_json(
        args=args,
        path=f"/api/v1/products/{product}/artifacts",
        document=document,
        not_found_hint=(
            f"check --product {product} and --build {document['build']}: the build must be one of that product's, "
            "and the token scoped to the product"
        ),
    )
    digest = _text_field(artifact, "digest", what="artifact")
    build_id = artifact.get("build") or document["build"]
    if status == 201:
        _note(f"registered artifact {document['name']} {digest} under build {build_id}")
    else:
        _note(f"artifact {digest} was already registered under build {build_id}; Custody kept it unchanged")
    _emit(artifact, digest, as_json=args.json)
    return 0


# evidence upload ------------------------------------------------------------------------------------------


def _read_file(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it: {exc.strerror or exc}") from None


def _header_filename(name: str) -> str:
    """An ASCII filename for the part header (the real name travels in the `name` field, in UTF-8)."""
    printable = "".join(ch if 32 <= ord(ch) < 127 else "_" for ch in name)
    # As browsers do (HTML's multipart/form-data encoding): a quote or line break cannot end the header early.
    return printable.replace('"', "%22").replace("\\", "%5C") or "upload"


def multipart(*, fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, for text `fields` and (field, filename, bytes) `files`."""
    contents = [value.encode("utf-8") for _, value in fields] + [data for _, _, data in files]
    boundary = f"custody-{secrets.token_hex(16)}"
    while any(boundary.encode("ascii") in content for content in contents):
        boundary = f"custody-{secrets.token_hex(16)}"
    parts = []
    for name, value in fields:
        header = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(header.encode("ascii") + value.encode("utf-8") + b"\r\n")
    for name, filename, data in files:
        header = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{_header_filename(filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(header.encode("ascii") + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    if count < 1000 * 1000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1000 / 1000:.1f} MB"


def _status_url(evidence: dict[str, Any], *, base_url: str, evidence_id: str) -> str:
    """Where the upload answer says to poll, resolved against the server the token was sent to."""
    path = evidence.get("status_url") or f"api/v1/evidence/{urllib.parse.quote(evidence_id)}"
    url = urllib.parse.urljoin(base_url.rstrip("/") + "/", str(path))
    here, there = urllib.parse.urlsplit(base_url), urllib.parse.urlsplit(url)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc):
        # The token goes with every poll: never to a host other than the one the user named.
        raise ServerError(f"Custody's status_url {path!r} points to another server; not sending the token there")
    return url


def _wait_for_processing(evidence: dict[str, Any], *, url: str, token: str, timeout: float) -> dict[str, Any]:
    """The evidence document once it is parsed, rejected or failed, or the latest one when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    delay = EVIDENCE_FIRST_POLL_SECONDS
    last_error: ServerError | None = None
    while evidence.get("state") not in FINISHED_STATES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if last_error is not None:
                raise last_error
            break
        pause = min(delay, remaining)
        if last_error is None:
            progress = f" ({evidence['progress']}%)" if evidence.get("progress") else ""
            _note(f"{evidence.get('id')} is {evidence.get('state')}{progress}; asking again in {pause:.1f} s")
        time.sleep(pause)
        delay = min(delay * 2, EVIDENCE_MAX_POLL_SECONDS)
        try:
            _, evidence = api.call(method="GET", url=url, token=token)
            last_error = None
        except ServerError as exc:
            # A network blip during a long wait should not fail the job while time remains.
            last_error = exc
            _note(f"{exc}; asking again")
    return evidence


def _summary_text(summary: Any) -> str:
    if not isinstance(summary, dict):
        return ""
    parts = []
    for key, value in summary.items():
        if isinstance(value, bool | int | float) or (isinstance(value, str) and value):
            parts.append(f"{key}={value}")
        elif isinstance(value, dict) and value and all(isinstance(v, int | float | str) for v in value.values()):
            items = [f"{k}:{v}" for k, v in list(value.items())[:8]]
            parts.append(f"{key}={','.join(items)}{',…' if len(value) > 8 else ''}")
    return " ".join(parts)


def _verdict_text(evidence: dict[str, Any]) -> str:
    verdict = str(evidence.get("verdict") or "unverified")
    key = evidence.get("signer_key")
    if verdict == "signed" and isinstance(key, dict):
        return f"signed by {key.get('name') or '?'} (key {str(key.get('key_id', ''))[:16]})"
    return verdict


def _outcome(evidence: dict[str, Any], *, evidence_id: str, name: str, waited: bool, timeout: float) -> int:
    state = evidence.get("state")
    if state == "parsed":
        summary = _summary_text(evidence.get("summary"))
        _note(f"{evidence_id} parsed, {_verdict_text(evidence)}{': ' + summary if summary else ''}")
        return 0
    if state == "superseded":
        _note(f"{evidence_id} parsed; {evidence.get('superseded_by')} holds the same file and counts instead")
        return 0
    if state == "failed" and waited:
        raise Refused(f"{evidence_id} ({name}) could not be parsed: {evidence.get('error') or 'no reason given'}")
    if state == "rejected" and waited:
        raise Refused(
            f"{evidence_id} ({name}) was rejected ({evidence.get('verdict')}): "
            f"{evidence.get('verdict_detail') or 'no reason given'}"
        )
    if not waited:
        error = f": {evidence['error']}" if state == "failed" and evidence.get("error") else ""
        _note(f"{evidence_id} is {state}{error} (add --wait to wait for processing and fail the step if it fails)")
        return 0
    _note(
        f"{evidence_id} is still {state} after {timeout:g} s; Custody's workers may be busy or stopped. "
        f"Ask again later with GET {evidence.get('status_url') or 'the status_url'}"
    )
    return EXIT_STILL_PROCESSING


def _evidence_upload_command(args) -> int:
    digest = _artifact_digest(args.artifact)
    evidence_type = _required_text(args.type, "--type")
    if args.timeout < 0:
        raise UsageError("--timeout must be zero or more seconds")
    data = _read_file(args.file, "FILE")
    name = (args.name or "").strip() or Path(args.file).name
    files = [("file", Path(args.file).name, data)]
    if args.signature:
        files.append(("signature", Path(args.signature).name, _read_file(args.signature, "--signature")))
    base_url, token = _connection(args)
    body, content_type = multipart(fields=[("type", evidence_type), ("name", name)], files=files)
    _, evidence = api.call(
        method="POST",
        url=api.api_url(base_url=base_url, path=f"/api/v1/artifacts/{digest}/evidence"),
        token=token,
        body=body,
        content_type=content_type,
        not_found_hint=(
            "no artifact with this digest that this token may see: register it with `custody artifact register`, "
            "and use a token scoped to its product"
        ),
        sending=f"{args.file} ({_size(len(data))})",
    )
    evidence_id = _text_field(evidence, "id", what="evidence")
    if not args.json:
        print(evidence_id, flush=True)  # before waiting: the upload is kept whatever processing decides
    again = "" if evidence.get("created", True) else " (these bytes were uploaded before: the same evidence)"
    _note(f"uploaded {name} ({_size(len(data))}) to {digest} as {evidence_id}, type {evidence_type}{again}")
    if args.wait:
        url = _status_url(evidence, base_url=base_url, evidence_id=evidence_id)
        evidence = _wait_for_processing(evidence, url=url, token=token, timeout=args.timeout)
    if args.json:
        print(json.dumps(evidence, indent=2, sort_keys=True), flush=True)
    return _outcome(evidence, evidence_id=evidence_id, name=name, waited=args.wait, timeout=args.timeout)


# Command line ---------------------------------------------------------------------------------------------


def _add_connection_options(parser, *, scope: str) -> None:
    parser.add_argument("--url", help="Custody base URL (default: $CUSTODY_URL)")
    parser.add_argument("--token", help=f"API token with {scope} (default: $CUSTODY_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the server's answer as JSON instead")


def add_commands(commands) -> None:
    """Add `build register`, `artifact register` and `evidence upload` to the `custody` parser's commands."""
    build = commands.add_parser("build", help="register a CI build with Custody")
    build_actions = build.add_subparsers(dest="action", required=True, metavar="ACTION")
    register = build_actions.add_parser(
        "register",
        help="register one CI run; prints the build id",
        description="Register one CI run and print its build id. Idempotent on product and pipeline URL: "
        "a re-run prints the same id.",
    )
    register.add_argument("--product", required=True, help="product key, e.g. rsd")
    register.add_argument("--commit", required=True, metavar="SHA", help="the commit that was built")
    register.add_argument("--branch", required=True)
    register.add_argument("--pipeline-url", required=True, metavar="URL", help="the CI run's page (one per run)")
    register.add_argument("--ci-system", required=True, help="e.g. github-actions, gitlab")
    register.add_argument("--build-number", metavar="N", help="the CI's own run number")
    register.add_argument("--builder-identity", metavar="ID", help="the workflow that built it (for provenance)")
    register.add_argument(
        "--commits-from-git",
        metavar="RANGE",
        help="list the commits of RANGE (e.g. BEFORE..SHA) with their authors, read with git log; "
        "separation of duties uses the authors",
    )
    _add_connection_options(register, scope="evidence:write")
    register.set_defaults(handler=_build_register_command)

    artifact = commands.add_parser("artifact", help="register a built artifact with Custody")
    artifact_actions = artifact.add_subparsers(dest="action", required=True, metavar="ACTION")
    register = artifact_actions.add_parser(
        "register",
        help="register an artifact by digest under its build; prints the digest",
        description="Register an artifact by its digest under the build that made it. Idempotent on the digest.",
    )
    register.add_argument("--product", required=True, help="product key, e.g. rsd")
    register.add_argument("--name", required=True, help="e.g. ghcr.io/acme/rsd")
    register.add_argument("--digest", required=True, metavar="sha256:DIGEST")
    register.add_argument("--build", required=True, metavar="ID", help="the build id `custody build register` printed")
    register.add_argument("--kind", required=True, help="e.g. container-image, package, binary")
    register.add_argument("--uri", help="where the artifact can be fetched")
    _add_connection_options(register, scope="evidence:write")
    register.set_defaults(handler=_artifact_register_command)

    evidence = commands.add_parser("evidence", help="upload evidence about an artifact")
    evidence_actions = evidence.add_subparsers(dest="action", required=True, metavar="ACTION")
    upload = evidence_actions.add_parser(
        "upload",
        help="upload one report, SBOM, scan or attestation; prints the evidence id",
        description="Upload one file as evidence about an artifact and print its evidence id. With --wait, "
        "wait until Custody has processed it and fail if it could not be parsed or was rejected.",
    )
    upload.add_argument("file", metavar="FILE")
    upload.add_argument("--artifact", required=True, metavar="sha256:DIGEST")
    upload.add_argument("--type", required=True, help=f"one of: {EVIDENCE_TYPES}")
    upload.add_argument("--name", help="a name for it (default: the file's name)")
    upload.add_argument("--signature", metavar="SIGFILE", help="detached signature (cosign sign-blob, base64)")
    upload.add_argument("--wait", action="store_true", help="wait until processed; exit 1 if parsing failed")
    upload.add_argument(
        "--timeout",
        type=float,
        default=EVIDENCE_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"with --wait, give up after SECONDS and exit 2 (default {EVIDENCE_WAIT_SECONDS:g})",
    )
    _add_connection_options(upload, scope="evidence:write")
    upload.set_defaults(handler=_evidence_upload_command)
