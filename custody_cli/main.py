"""The `custody` command: register builds and artifacts, upload evidence, ask the release gate, fetch Custody's
public keys, verify an evidence bundle offline.

Exit codes (see docs/cli.md):

- ``custody verify-bundle``: 0 verified, 1 files changed/added/removed, 2 manifest signature invalid or
  missing, 3 signed by a key not among the ``--key`` keys (or a ``--key`` file is unusable), 4 not a readable
  bundle.
- ``custody gate``: 0 allowed, 1 blocked, 2 pending, 3 usage or configuration error, 4 server or network error.
- ``custody keys``: 0 printed, 3 usage or configuration error, 4 server or network error.
- ``custody build register``, ``custody artifact register``, ``custody evidence upload``: 0 done, 1 refused by
  Custody (HTTP 4xx, its ``detail`` printed) or, with ``--wait``, the evidence failed parsing or was rejected,
  2 still processing when ``--wait`` gave up, 3 usage or configuration error, 4 server or network error.

Any command-line usage error exits 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.digests import is_digest
from custody_cli import intake
from custody_cli.api import (
    EXIT_USAGE,
    CliError,
    ServerError,
    UsageError,
    api_url,
    get_json,
    setting,
)

if TYPE_CHECKING:
    from custody_cli import bundle as bundles

GATE_EXIT_CODES = {"allowed": 0, "blocked": 1, "pending": 2}
POLL_INTERVAL_SECONDS = 10.0


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors, which would read as 'pending' or 'signature invalid' in CI."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


# verify-bundle --------------------------------------------------------------------------------------------


def _bundle_module():
    """custody_cli.bundle, loaded only to verify a bundle: it needs `cryptography`; the CI commands need nothing."""
    from custody_cli import bundle

    return bundle


def _read_trusted_keys(paths: list[str]) -> list[bytes]:
    bundles = _bundle_module()
    keys = []
    for path in paths:
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"--key {path}: cannot read it: {exc.strerror or exc}") from None
        blocks = bundles.split_pem_public_keys(text)
        if not blocks:
            raise UsageError(f"--key {path}: no '-----BEGIN PUBLIC KEY-----' block in it (save `custody keys` output)")
        keys.extend(blocks)
    return keys


def _print_bundle_report(report: bundles.BundleReport, *, bundle_path: str) -> None:
    bundles = _bundle_module()
    out = sys.stdout
    verdicts = {
        bundles.EXIT_VERIFIED: "VERIFIED",
        bundles.EXIT_FILES_DIFFER: "FILES DIFFER FROM THE SIGNED MANIFEST",
        bundles.EXIT_SIGNATURE_INVALID: "SIGNATURE INVALID OR MISSING",
        bundles.EXIT_KEY_UNTRUSTED: "SIGNED BY AN UNTRUSTED KEY",
        bundles.EXIT_UNREADABLE: "NOT A READABLE BUNDLE",
    }
    verdict = verdicts.get(report.exit_code, "FAILED")
    if report.exit_code == bundles.EXIT_VERIFIED and report.key_trusted is None:
        verdict = "VERIFIED WITH THE KEY INSIDE THE BUNDLE (not checked against a trusted copy; see the warning)"
    print(f"{bundle_path}: {verdict}", file=out)
    if report.subject:
        subject = ", ".join(f"{key}={value}" for key, value in sorted(report.subject.items()))
        print(f"  subject: {subject}", file=out)
    if report.created_at:
        print(f"  created: {report.created_at.isoformat()}", file=out)
    if report.key_id:
        trust = {True: "trusted", False: "NOT TRUSTED", None: "not checked against a trusted key"}[report.key_trusted]
        print(f"  signing key: {report.key_id} ({trust})", file=out)
    if report.exit_code != bundles.EXIT_UNREADABLE:
        print(f"  signature: {'valid' if report.signature_valid else 'INVALID'}", file=out)
        print(f"  files checked: {report.files_checked}", file=out)
    for label, paths in (("changed", report.changed), ("added", report.added), ("removed", report.removed)):
        for path in paths:
            print(f"  {label}: {path}", file=out)
    for message in report.errors:
        print(f"  error: {message}", file=out)
    for message in report.warnings:
        print(f"  warning: {message}", file=out)


def _verify_bundle_command(args) -> int:
    bundles = _bundle_module()
    trusted = _read_trusted_keys(args.key) if args.key else None
    try:
        report = bundles.verify_bundle(args.bundle, trusted_public_keys=trusted)
    except bundles.BundleError as exc:
        raise UsageError(f"--key: {exc}") from None
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        _print_bundle_report(report, bundle_path=args.bundle)
    return report.exit_code


# gate -----------------------------------------------------------------------------------------------------


def _check_status_shape(status: Any) -> dict[str, Any]:
    """The status document, or a ServerError naming the JSON path that is wrong."""
    if not isinstance(status, dict):
        raise ServerError(f"the status answer must be a JSON object, not {type(status).__name__}")
    decision = status.get("decision")
    if decision not in GATE_EXIT_CODES:
        raise ServerError(f"decision: expected allowed, blocked or pending, got {decision!r}")
    for key, kind in (("gates", list), ("reasons", list), ("approvals", dict), ("policy", dict)):
        if status.get(key) is not None and not isinstance(status[key], kind):
            raise ServerError(f"{key}: expected a JSON {'array' if kind is list else 'object'}")
    for index, gate in enumerate(status.get("gates") or []):
        if not isinstance(gate, dict):
            raise ServerError(f"gates[{index}]: expected an object with id, kind, blocking, status, detail")
    return status


def _describe_approval(item: Any) -> str:
    if isinstance(item, dict):
        parts = [str(item[key]) for key in ("role", "meaning", "name", "detail") if item.get(key)]
        return " — ".join(parts) if parts else json.dumps(item, sort_keys=True)
    return str(item)


def _print_status(status: dict[str, Any]) -> None:
    out = sys.stdout
    decision = status["decision"]
    where = " ".join(str(status[key]) for key in ("product", "release") if status.get(key))
    promotion = f" ({status['promotion']})" if status.get("promotion") else ""
    print(
        f"Decision: {decision.upper()} — {where or 'artifact'}{promotion} → {status.get('environment', '?')}", file=out
    )
    policy = status.get("policy") or {}
    if policy.get("name"):
        print(f"  policy: {policy['name']} v{policy.get('version', '?')} ({policy.get('digest', '')})", file=out)
    failing = [g for g in status.get("gates") or [] if g.get("blocking") and g.get("status") != "pass"]
    for gate in failing:
        detail = f": {gate['detail']}" if gate.get("detail") else ""
        print(f"  gate {gate.get('id', '?')} ({gate.get('kind', '?')}) {gate.get('status', '?')}{detail}", file=out)
    approvals = status.get("approvals") or {}
    missing = approvals.get("missing")
    if isinstance(missing, list):
        for item in missing:
            print(f"  missing approval: {_describe_approval(item)}", file=out)
    elif isinstance(missing, int) and missing:
        print(f"  missing approvals: {missing} of {approvals.get('required', '?')}", file=out)
    for reason in status.get("reasons") or []:
        print(f"  reason: {reason}", file=out)
    if status.get("evaluated_at"):
        print(f"  evaluated at: {status['evaluated_at']}", file=out)


def _gate_command(args) -> int:
    if not is_digest((args.artifact or "").strip().lower()):
        raise UsageError(f"--artifact must be sha256:<64 hex characters>, not {args.artifact!r}")
    if not args.environment.strip():
        raise UsageError("--environment must name an environment, e.g. production")
    if args.wait is not None and args.wait < 0:
        raise UsageError("--wait must be zero or more seconds")
    base_url = setting(args.url, env="CUSTODY_URL", option="--url")
    token = setting(args.token, env="CUSTODY_TOKEN", option="--token")
    url = api_url(
        base_url=base_url,
        path="/api/v1/status",
        query={"artifact": args.artifact.lower(), "environment": args.environment.strip()},
    )
    deadline = time.monotonic() + (args.wait or 0)
    while True:
        status = _check_status_shape(get_json(url=url, token=token))
        remaining = deadline - time.monotonic()
        if status["decision"] != "pending" or remaining <= 0:
            break
        print(f"pending; asking again in {min(POLL_INTERVAL_SECONDS, remaining):.0f} s", file=sys.stderr)
        time.sleep(min(POLL_INTERVAL_SECONDS, remaining))
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        _print_status(status)
    return GATE_EXIT_CODES[status["decision"]]


# keys -----------------------------------------------------------------------------------------------------


def _keys_command(args) -> int:
    base_url = setting(args.url, env="CUSTODY_URL", option="--url")
    token = args.token or os.environ.get("CUSTODY_TOKEN") or None
    document = get_json(url=api_url(base_url=base_url, path="/api/v1/keys"), token=token)
    keys = document.get("keys") if isinstance(document, dict) else document
    if not isinstance(keys, list):
        raise ServerError("the keys answer must be a list of keys or an object with a 'keys' list")
    printed = 0
    for index, key in enumerate(keys):
        pem = key.get("public_key_pem") if isinstance(key, dict) else None
        if not isinstance(pem, str) or "BEGIN PUBLIC KEY" not in pem:
            raise ServerError(f"keys[{index}].public_key_pem: expected a PEM public key")
        # Key IDs and status go to stderr so `custody keys > custody.pub` holds only PEM blocks.
        print(f"# {key.get('key_id', '?')} ({key.get('status', '?')}, {key.get('algorithm', '?')})", file=sys.stderr)
        sys.stdout.write(pem if pem.endswith("\n") else pem + "\n")
        printed += 1
    if not printed:
        raise ServerError("Custody returned no public keys")
    return 0


# witness serve --------------------------------------------------------------------------------------------


def _witness_serve_command(args) -> int:
    from custody_cli import witness

    bundles = _bundle_module()
    try:
        trusted = bundles.load_trusted_keys(_read_trusted_keys(args.key)) if args.key else None
    except bundles.BundleError as exc:
        raise UsageError(f"--key: {exc}") from None
    token = ""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file}: cannot read it: {exc.strerror or exc}") from None
    try:
        witness.serve(store_path=Path(args.store), host=args.host, port=args.port, trusted=trusted, token=token)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        return 0
    return 0


# Entry point ----------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="custody",
        description="Custody command-line client: CI intake (builds, artifacts, evidence), release gate, bundles.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    intake.add_commands(commands)

    verify = commands.add_parser("verify-bundle", help="verify an evidence bundle offline")
    verify.add_argument("bundle", metavar="BUNDLE.zip")
    verify.add_argument(
        "--key", action="append", default=[], metavar="custody.pub", help="trusted Custody public key (repeatable)"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=_verify_bundle_command)

    gate = commands.add_parser("gate", help="ask whether an artifact may go to an environment")
    gate.add_argument("--artifact", required=True, metavar="sha256:DIGEST")
    gate.add_argument("--environment", required=True)
    gate.add_argument("--url", help="Custody base URL (default: $CUSTODY_URL)")
    gate.add_argument("--token", help="API token with status:read (default: $CUSTODY_TOKEN)")
    gate.add_argument("--wait", type=float, metavar="SECONDS", help="poll every 10 s while pending, up to SECONDS")
    gate.add_argument("--json", action="store_true", help="print the status document as JSON")
    gate.set_defaults(handler=_gate_command)

    keys = commands.add_parser("keys", help="print Custody's public signing keys as PEM (for --key)")
    keys.add_argument("--url", help="Custody base URL (default: $CUSTODY_URL)")
    keys.add_argument("--token", help="API token, if the server asks for one (default: $CUSTODY_TOKEN)")
    keys.set_defaults(handler=_keys_command)

    witness = commands.add_parser("witness", help="run a witness that keeps Custody's audit checkpoints")
    witness_commands = witness.add_subparsers(dest="witness_command", required=True, metavar="ACTION")
    serve = witness_commands.add_parser("serve", help="keep every checkpoint POSTed; GET answers them all")
    serve.add_argument("--store", required=True, metavar="FILE", help="the append-only JSON-lines file to keep")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8787, help="port to listen on (default: 8787; 0 picks one)")
    serve.add_argument(
        "--key", action="append", default=[], metavar="custody.pub", help="keep only checkpoints signed by this key"
    )
    serve.add_argument("--token-file", metavar="FILE", help="ask for this bearer token on every request")
    serve.set_defaults(handler=_witness_serve_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `custody` command and return its exit code."""
    try:
        args = _parser().parse_args(argv)
        return args.handler(args)
    except CliError as exc:
        print(f"custody: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help and --version exit 0 through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
