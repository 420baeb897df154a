"""Demo data for `make run` (DESIGN §9): a medical SaaS team's products, policies, people and change requests.

Everything goes through the real services, so the audit trail, signatures and tiers are genuine. Safe to run
twice: each step looks for what it would create and skips it. Other apps extend the demo with a
`seed(context)` function in `evidence.demo`, `approvals.demo` and `traceability.demo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.db import transaction

from changecontrol import esign, roles, selectors, services
from changecontrol.api_auth import token_create
from changecontrol.management.commands._shared import account_ensure
from changecontrol.models import ApiToken, ChangeRequest, Product, Role, User
from changecontrol.policy import DEFAULT_POLICY_YAML

DEMO_PASSWORD = "custody-demo-password"
DEMO_EMAIL_DOMAIN = "demo.custody.example"
# Everything a pipeline does; `changes:write` acts for a person (proposing a policy), never for CI.
CI_SCOPES = [scope for scope in ApiToken.SCOPES if scope != "changes:write"]

PRODUCTS = {
    "rsd": {
        "name": "Risk Score Dashboard",
        "safety_class": "B",
        "safety_rationale": (
            "Clinicians see a sepsis risk score computed from vital signs and lab results. A wrong or missing "
            "score could delay escalation, but every alert is reviewed by a clinician before treatment, so the "
            "worst credible harm is non-serious injury (IEC 62304 class B)."
        ),
        "repository_url": "https://github.com/acme/rsd",
    },
    "lab": {
        "name": "Lab Results Gateway",
        "safety_class": "C",
        "safety_rationale": (
            "Routes laboratory results from the hospital LIS to the clinical record. A lost or misrouted critical "
            "result (e.g. a potassium panic value) could contribute to death or serious injury, and no clinician "
            "check sits between the gateway and the record (IEC 62304 class C)."
        ),
        "repository_url": "https://github.com/acme/lab-gateway",
    },
}

# username: (printed name, {product: [roles]}); "admin" is also a superuser.
PEOPLE: dict[str, tuple[str, dict[str, list[str]]]] = {
    "emma": ("Emma Okafor", {"rsd": [Role.ENGINEER]}),
    "ravi": ("Ravi Shah", {"rsd": [Role.RELEASE_MANAGER], "lab": [Role.RELEASE_MANAGER]}),
    "grace": ("Grace Lindqvist", {"rsd": [Role.QUALITY], "lab": [Role.QUALITY]}),
    "tomas": ("Tomás Ferreira", {"rsd": [Role.SECURITY], "lab": [Role.SECURITY]}),
    "priya": ("Priya Natarajan", {"rsd": [Role.PRODUCT]}),
    "sean": ("Seán Murphy", {"rsd": [Role.SRE], "lab": [Role.SRE]}),
    "aiko": ("Aiko Tanaka", {"rsd": [Role.AUDITOR], "lab": [Role.AUDITOR]}),
    "admin": ("Dana Whitfield", {"rsd": [Role.ADMIN], "lab": [Role.ADMIN]}),
    # Only on lab: signs in to see that rsd does not exist for her (per-product permissions).
    "lena": ("Lena Fischer", {"lab": [Role.ENGINEER]}),
}

LOW = {
    "patient_safety_impact": "none",
    "data_sensitivity": "none",
    "user_impact": "minor",
    "rollback_complexity": "trivial",
}
MEDIUM = {
    "patient_safety_impact": "indirect",
    "data_sensitivity": "none",
    "user_impact": "minor",
    "rollback_complexity": "trivial",
}
HIGH = {
    "patient_safety_impact": "direct",
    "data_sensitivity": "none",
    "user_impact": "minor",
    "rollback_complexity": "trivial",
}
HIGH_PHI = {
    "patient_safety_impact": "indirect",
    "data_sensitivity": "phi",
    "user_impact": "minor",
    "rollback_complexity": "moderate",
}


@dataclass
class DemoContext:
    """What the demo of every other app receives: the products, the cast, the shared password and the CI token."""

    products: dict[str, Product]
    people: dict[str, User]
    password: str
    stdout: TextIO | Any
    created_change_requests: int = 0
    ci_secret: str | None = None
    notes: list[str] = field(default_factory=list)

    def person(self, *usernames: str) -> User | None:
        """The first of these demo people who exists."""
        return next((self.people[name] for name in usernames if name in self.people), None)


# Each CR: product, requester, content, answers, then the steps that bring it to its demo state.
CHANGE_REQUESTS: list[dict[str, Any]] = [
    {
        "product": "rsd",
        "requester": "ravi",
        "answers": MEDIUM,
        "steps": [
            ("submit",),
            ("sign", "grace", "approved", "Replay results reviewed with the clinical panel; flag rate matches."),
        ],
        "title": "Raise the sepsis amber threshold from 0.35 to 0.42",
        "why": "The clinical safety panel's Q3 review found 38% of amber alerts were for patients who never "
        "deteriorated; ward nurses report alert fatigue.",
        "what_changes": "scoring-service configuration: amber_threshold 0.35 → 0.42. No code change.",
        "affected_items": "scoring-service, REQ-017, HAZ-3",
        "kind": "configuration",
        "change_type": "normal",
        "verification_plan": "Replay the last quarter's 41,200 anonymised encounters; the panel compares flag rates "
        "and confirms no red-band patient drops below amber.",
        "rollback_plan": "Revert the configuration commit and redeploy the previous image digest (under 10 minutes).",
    },
    {
        "product": "rsd",
        "requester": "emma",
        "answers": HIGH,
        "steps": [
            ("submit",),
            (
                "sign",
                "grace",
                "approved",
                "Unit and replay tests cover the new lactate weighting; hazard HAZ-3 control verified.",
            ),
            ("sign", "tomas", "approved", "No new dependencies; input validation on the lactate feed reviewed."),
            ("implement", "emma"),
        ],
        "title": "Add serum lactate to the sepsis score model",
        "why": "Surviving Sepsis Campaign guidance weights lactate > 2 mmol/L heavily; our score ignores it.",
        "what_changes": "score model v4: new lactate feature from the LIS feed, retrained weights, updated tooltip.",
        "affected_items": "scoring-service, lis-adapter, REQ-021, REQ-022, HAZ-3, RC-5",
        "kind": "code",
        "change_type": "normal",
        "verification_plan": "Model validation report against the MIMIC-IV hold-out set; unit tests for missing and "
        "out-of-range lactate; clinical sign-off of 50 sampled cases.",
        "rollback_plan": "Feature flag score.lactate off restores model v3 scoring immediately; full rollback by "
        "redeploying the previous digest.",
    },
    {
        "product": "rsd",
        "requester": "priya",
        "answers": LOW,
        "steps": [("submit",)],
        "title": "Update the support phone number in the dashboard footer",
        "why": "The service desk moved to a new number on 1 March; the old one forwards only until 30 April.",
        "what_changes": "Footer template text only.",
        "affected_items": "web-frontend",
        "kind": "code",
        "change_type": "standard",
        "verification_plan": "Visual check in staging; link test.",
        "rollback_plan": "Revert the commit.",
    },
    {
        "product": "rsd",
        "requester": "emma",
        "answers": MEDIUM,
        "steps": [
            ("submit",),
            (
                "sign",
                "grace",
                "rejected",
                "The verification plan replays only two weeks of data; the panel asked for a "
                "full quarter including the winter peak. Resubmit with that.",
            ),
        ],
        "title": "Cache the risk score for 5 minutes to cut database load",
        "why": "Ward dashboards poll every 10 s; the scoring database runs at 85% CPU at shift change.",
        "what_changes": "Redis cache in front of score reads, 5-minute TTL.",
        "affected_items": "scoring-service, REQ-030",
        "kind": "code",
        "change_type": "normal",
        "verification_plan": "Load test at 3× shift-change traffic; replay two weeks of score reads.",
        "rollback_plan": "Disable the cache with the score.cache flag.",
    },
    {
        "product": "rsd",
        "requester": "ravi",
        "answers": HIGH_PHI,
        "steps": [("submit",), ("sign", "grace", "approved", "Data-flow diagram and DPIA update reviewed.")],
        "title": "Export the ward patient list to the hospital's new data warehouse",
        "why": "The trust's analytics team needs daily sepsis-alert counts per ward for the national audit.",
        "what_changes": "Nightly job writes pseudonymised alert rows to the warehouse over mutual TLS.",
        "affected_items": "export-job, REQ-040, HAZ-9",
        "kind": "code",
        "change_type": "normal",
        "verification_plan": "Re-identification test on a sample export; TLS configuration scan; row counts reconciled "
        "against the dashboard for a week.",
        "rollback_plan": "Disable the nightly job; the warehouse team deletes the received partitions.",
    },
    {
        "product": "rsd",
        "requester": "sean",
        "answers": LOW,
        "steps": [("withdraw", "sean", "Superseded: the platform team is upgrading all clusters together next month.")],
        "title": "Upgrade the production Kubernetes node pool to 1.30",
        "why": "1.28 leaves extended support in June.",
        "what_changes": "Node pool version bump, no application change.",
        "affected_items": "platform",
        "kind": "operational",
        "change_type": "normal",
        "verification_plan": "Upgrade staging first; smoke tests.",
        "rollback_plan": "Recreate the old node pool from the saved template.",
    },
    {
        "product": "rsd",
        "requester": "emma",
        "answers": None,
        "steps": [],
        "title": "Show the score's contributing factors on hover",
        "why": "Clinicians ask why a patient is amber; explaining the top factors builds appropriate trust.",
        "what_changes": "Tooltip listing the three largest contributions to the score.",
        "affected_items": "web-frontend, REQ-045",
        "kind": "feature_flag",
        "change_type": "normal",
        "verification_plan": "",
        "rollback_plan": "",
    },
    {
        "product": "lab",
        "requester": "lena",
        "answers": HIGH,
        "steps": [("submit",)],
        "title": "Route potassium panic values to the on-call registrar's pager",
        "why": "Incident INC-2231: a panic potassium waited 47 minutes in the ward inbox overnight.",
        "what_changes": "New routing rule for K+ > 6.5 mmol/L: page the on-call registrar as well as the ward inbox.",
        "affected_items": "routing-engine, pager-adapter, REQ-112, HAZ-14",
        "kind": "configuration",
        "change_type": "normal",
        "verification_plan": "Inject synthetic panic results in staging; confirm page delivery within 60 s end to end.",
        "rollback_plan": "Remove the routing rule; results continue to the ward inbox as today.",
    },
]


def seed(
    *,
    stdout,
    before_change_requests: Callable[[DemoContext], None] | None = None,
    on_change_request_opened: Callable[[DemoContext, ChangeRequest], None] | None = None,
) -> DemoContext:
    """Create (or find) the core demo data: people and roles, products, policies, change requests, a CI token.

    The items a change request covers are part of what its reviewers sign, so they are stated while it is a draft:
    `before_change_requests` seeds what the CRs will name (the design history), `on_change_request_opened` links it
    to each new draft before the CR walks on to its demo state."""
    with transaction.atomic():
        people = _seed_people()
        admin = people["admin"]
        products = {key: _seed_product(key, admin) for key in PRODUCTS}
        _seed_roles(people, products, admin)
        for product in products.values():
            _seed_policy(product, people)
        context = DemoContext(products=products, people=people, password=DEMO_PASSWORD, stdout=stdout)
        if before_change_requests is not None:
            before_change_requests(context)
        opened = (lambda cr: on_change_request_opened(context, cr)) if on_change_request_opened else None
        context.created_change_requests = sum(
            _seed_change_request(spec, products, people, on_opened=opened) for spec in CHANGE_REQUESTS
        )
    context.ci_secret = _seed_ci_token(products["rsd"], admin)
    return context


def _seed_people() -> dict[str, User]:
    people = {}
    for username, (full_name, _) in PEOPLE.items():
        people[username], _ = account_ensure(
            actor=None,
            username=username,
            full_name=full_name,
            email=f"{username}@{DEMO_EMAIL_DOMAIN}",
            password=DEMO_PASSWORD,
            is_superuser=username == "admin",
        )
    return people


def _seed_product(key: str, admin: User) -> Product:
    existing = Product.objects.filter(key=key).first()
    if existing is not None:
        return existing
    return services.product_create(actor=admin, key=key, **PRODUCTS[key])


def _seed_roles(people: dict[str, User], products: dict[str, Product], admin: User) -> None:
    for username, (_, grants) in PEOPLE.items():
        for product_key, role_list in grants.items():
            for role in role_list:
                roles.role_grant(actor=admin, user=people[username], product=products[product_key], role=role)


def _seed_policy(product: Product, people: dict[str, User]) -> None:
    """The default policy, proposed by the administrator and signed by the quality reviewer."""
    if services.active_policy(product) is not None:
        return
    source = DEFAULT_POLICY_YAML.replace("\npolicy: rsd\n", f"\npolicy: {product.key}\n", 1)
    version = services.policy_version_propose(
        product=product,
        author=people["admin"],
        source=source,
        reason=f"Initial change-control policy for {product.name}",
    )
    services.policy_version_sign(
        policy_version=version,
        signer=people["grace"],
        username="grace",
        password=DEMO_PASSWORD,
        # The demo reviewer signs the version as it stands, as the signing dialog would show it.
        seen_sha256=esign.content_sha256(selectors.policy_version_signing_content(version)),
        comment="Reviewed against SOP-QA-012 (change control) and the IEC 62304 class.",
    )


def _seed_change_request(
    spec: dict[str, Any],
    products: dict[str, Product],
    people: dict[str, User],
    *,
    on_opened: Callable[[ChangeRequest], None] | None = None,
) -> int:
    """Create one CR and walk it to its demo state; 0 when it already exists (idempotent by product + title)."""
    product = products[spec["product"]]
    if ChangeRequest.objects.filter(product=product, title=spec["title"]).exists():
        return 0
    fields = {k: spec[k] for k in services.CR_CONTENT_FIELDS}
    requester = people[spec["requester"]]
    change_request = services.change_request_create(
        product=product, requester=requester, risk_answers=spec["answers"], **fields
    )
    if on_opened is not None:
        on_opened(change_request)
        change_request.refresh_from_db()
    for step in spec["steps"]:
        verb = step[0]
        if verb == "submit":
            change_request = services.change_request_submit(change_request=change_request, actor=requester)
        elif verb == "sign":
            signer = people[step[1]]
            services.change_request_sign(
                change_request=change_request,
                signer=signer,
                username=signer.username,
                password=DEMO_PASSWORD,
                meaning=step[2],
                seen_sha256=esign.content_sha256(selectors.change_request_signing_content(change_request)),
                comment=step[3],
            )
        elif verb == "implement":
            change_request = services.change_request_mark_implemented(
                change_request=change_request, actor=people[step[1]]
            )
        elif verb == "withdraw":
            change_request = services.change_request_withdraw(
                change_request=change_request, actor=people[step[1]], reason=step[2]
            )
    return 1


def _token_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-ci-token.txt"


def _seed_ci_token(product: Product, admin: User) -> str | None:
    """The demo CI token. Only its hash is stored, so the secret is kept in var/ to print it on later runs."""
    account, _ = account_ensure(actor=admin, username="ci-rsd", full_name="CI (rsd)", is_service_account=True)
    path = _token_file()
    if ApiToken.objects.filter(user=account, name="ci", revoked_at__isnull=True).exists():
        saved = path.read_text().strip() if path.exists() else ""
        if (
            saved
            and ApiToken.objects.filter(token_sha256=ApiToken.hash_secret(saved), revoked_at__isnull=True).exists()
        ):
            return saved
        return None
    _, secret = token_create(actor=admin, name="ci", user=account, products=[product], scopes=CI_SCOPES)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


def print_summary(context: DemoContext) -> None:
    """The demo logins, the CI token and where to open the app: what `make run` shows before serving."""
    stdout, ci_secret = context.stdout, context.ci_secret
    stdout.write("")
    stdout.write(f"Demo data ready ({context.created_change_requests} new change request(s) this run).")
    stdout.write(f"Demo logins — password for everyone: {DEMO_PASSWORD}")
    for username, (full_name, grants) in PEOPLE.items():
        held = "; ".join(f"{key}: {', '.join(Role(r).label for r in role_list)}" for key, role_list in grants.items())
        stdout.write(f"  {username:<8} {full_name:<18} {held}")
    for note in context.notes:
        stdout.write(note)
    if ci_secret:
        stdout.write(f"Demo CI token for rsd ({', '.join(CI_SCOPES)}):")
        stdout.write(f"  {ci_secret}")
    else:
        stdout.write("The demo CI token was created earlier and its secret is not on file; make a new one with")
        stdout.write("  manage.py create_token --product rsd --name ci --scopes evidence:write,status:read")
    stdout.write("Open http://127.0.0.1:8000")
