"""The demo for `make run` (DESIGN §9): every app seeds its part, from the ground up, through its own services.

Order matters: traceability items come before the releases the approvals demo freezes (a frozen release takes its
trace baseline from them), and the runtime demo deploys what the approvals demo approved.
"""

from __future__ import annotations

from approvals import demo as approvals_demo
from changecontrol import audit
from changecontrol import demo as core_demo
from evidence import demo as evidence_demo
from runtime import demo as runtime_demo
from traceability import demo as traceability_demo

APP_DEMOS = (evidence_demo, approvals_demo, runtime_demo)


def seed(*, stdout) -> core_demo.DemoContext:
    """Seed every app's demo data (safe to run twice) and print the logins and the CI token."""
    # The design history comes before the change requests: what a CR covers is linked while it is a draft.
    context = core_demo.seed(
        stdout=stdout,
        before_change_requests=traceability_demo.seed,
        on_change_request_opened=traceability_demo.link_change_request,
    )
    for app_demo in APP_DEMOS:
        stdout.write(f"Seeding {app_demo.__name__} …")
        app_demo.seed(context)
    # A signed checkpoint over everything seeded (published to the witnesses), so verify_audit says "intact".
    if audit.checkpoint_needed():
        audit.checkpoint_create()
    core_demo.print_summary(context)
    return context
