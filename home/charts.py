"""The dashboard's two charts, computed in a fixed number of queries and drawn as server-side SVG (no JS).

Lead time: from a change request's approval (`decided_at`) to the first time a release containing it reached
production — its first production deployment once deployments are recorded, until then the production
promotion being approved or deployed. Rejection rate: of the promotions decided each week, the share rejected.
Both are weekly over the last 90 days. Each chart carries `<title>`, `<desc>`, axis labels and, in the page,
a data table with the same figures (WCAG 1.1.1: the table is the text alternative).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from approvals.models import Promotion
from changecontrol.models import ChangeRequest, Environment
from runtime.models import Deployment

WINDOW_DAYS = 90
APPROVED_CR_STATES = (ChangeRequest.State.APPROVED, ChangeRequest.State.IMPLEMENTED, ChangeRequest.State.CLOSED)


@dataclass
class Week:
    """One weekly bucket of a chart: its value (None when nothing happened) and how many records it summarises."""

    start: date
    value: float | None = None
    n: int = 0
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.start:%d %b}"


@dataclass
class Series:
    """A weekly series over the window, with its overall figure (median or rate) and unit."""

    weeks: list[Week]
    overall: float | None
    total: int
    unit: str
    since: datetime
    source: str = ""
    values: list[float] = field(default_factory=list)


def _week_start(moment: datetime | date) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def _empty_weeks(since: datetime, now: datetime) -> dict[date, Week]:
    weeks, start = {}, _week_start(since)
    while start <= _week_start(now):
        weeks[start] = Week(start=start)
        start += timedelta(days=7)
    return weeks


def production_environment_ids(product_ids: list[int]) -> list[int]:
    """Each product's last environment in promotion order: its production."""
    # A handful of rows per product; picked in Python because the embedded default runs on SQLite (no DISTINCT ON).
    last: dict[int, int] = {}
    for product_id, environment_id in (
        Environment.objects.filter(product_id__in=product_ids)
        .order_by("product_id", "order")
        .values_list("product_id", "id")
    ):
        last[product_id] = environment_id
    return list(last.values())


def _first_production_times(product_ids: list[int], since: datetime) -> tuple[list[tuple[datetime, datetime]], str]:
    """[(CR approved at, its release first reached production at)] for CRs that reached production since `since`.

    From recorded production deployments once there are any; until then from the production promotion being
    approved (or marked deployed), which is the best evidence of "reached production" an installation has.
    """
    environment_ids = production_environment_ids(product_ids)
    pairs = _from_deployments(environment_ids, since)
    if pairs:
        return pairs, "first production deployment"
    rows = (
        Promotion.objects.filter(
            environment_id__in=environment_ids,
            state__in=Promotion.PASSED_STATES,
            release__change_requests__state__in=APPROVED_CR_STATES,
            release__change_requests__decided_at__isnull=False,
        )
        .values("release__change_requests")
        .annotate(
            approved_at=Max("release__change_requests__decided_at"),
            reached=Min(Coalesce("deployed_at", "decided_at")),
        )
        .filter(reached__gte=since)
    )
    return [(row["approved_at"], row["reached"]) for row in rows], "production promotion approved or deployed"


def _from_deployments(environment_ids: list[int], since: datetime) -> list[tuple[datetime, datetime]]:
    """The same pairs from deployments: a deployment names its release, or else its artifact's releases count."""
    first: dict[int, tuple[datetime, datetime]] = {}
    for filters, path in (
        ({"release__isnull": False}, "release__change_requests"),
        ({"release__isnull": True}, "artifact__releases__change_requests"),
    ):
        rows = (
            Deployment.objects.filter(
                environment_id__in=environment_ids,
                **filters,
                **{f"{path}__state__in": APPROVED_CR_STATES, f"{path}__decided_at__isnull": False},
            )
            .values(path)
            .annotate(approved_at=Max(f"{path}__decided_at"), reached=Min("deployed_at"))
        )
        for row in rows:
            known = first.get(row[path])
            if known is None or row["reached"] < known[1]:
                first[row[path]] = (row["approved_at"], row["reached"])
    # Filtered after merging: a CR first deployed before the window is not "reached production" inside it.
    return [pair for pair in first.values() if pair[1] >= since]


def lead_time_series(*, product_ids: list[int], now: datetime | None = None) -> Series:
    """Weekly median hours (or days) from CR approval to production, by the week production was reached."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    pairs, source = _first_production_times(product_ids, since)
    hours_by_week: dict[date, list[float]] = {}
    all_hours = []
    for approved_at, reached in pairs:
        hours = max((reached - approved_at).total_seconds() / 3600, 0.0)
        hours_by_week.setdefault(_week_start(reached), []).append(hours)
        all_hours.append(hours)
    unit, scale = ("days", 24.0) if all_hours and max(all_hours) >= 48 else ("hours", 1.0)
    weeks = _empty_weeks(since, now)
    for start, values in hours_by_week.items():
        if start in weeks:
            weeks[start].value = round(statistics.median(values) / scale, 1)
            weeks[start].n = len(values)
            weeks[start].detail = f"{len(values)} change(s)"
    overall = round(statistics.median(all_hours) / scale, 1) if all_hours else None
    return Series(
        weeks=list(weeks.values()),
        overall=overall,
        total=len(all_hours),
        unit=unit,
        since=since,
        source=source,
        values=[round(h / scale, 1) for h in all_hours],
    )


def rejection_rate_series(*, product_ids: list[int], now: datetime | None = None) -> Series:
    """Weekly share of decided promotions that were rejected, by the week of the decision."""

    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    rows = (
        Promotion.objects.filter(release__product_id__in=product_ids, decided_at__isnull=False, decided_at__gte=since)
        .annotate(week=TruncWeek("decided_at"))
        .values("week")
        .annotate(decided=Count("id"), rejected=Count("id", filter=Q(state=Promotion.State.REJECTED)))
    )
    weeks = _empty_weeks(since, now)
    decided_total = rejected_total = 0
    for row in rows:
        start = _week_start(row["week"])
        if start not in weeks:
            continue
        weeks[start].value = round(100.0 * row["rejected"] / row["decided"], 1)
        weeks[start].n = row["decided"]
        weeks[start].detail = f"{row['rejected']} of {row['decided']} rejected"
        decided_total += row["decided"]
        rejected_total += row["rejected"]
    overall = round(100.0 * rejected_total / decided_total, 1) if decided_total else None
    return Series(weeks=list(weeks.values()), overall=overall, total=decided_total, unit="%", since=since)


# ---------------------------------------------------------------- drawing

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 16, 52
# Presentation attributes inline, so the chart reads the same in any stylesheet, a PDF or a saved page.
TEXT = 'fill="#4a5360" font-size="11"'
LABEL = 'fill="#1b1f24" font-size="12"'


def _nice_ceiling(value: float) -> float:
    """A round axis maximum at or above the value (1, 2, 2.5, 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def bar_chart_svg(
    *,
    chart_id: str,
    series: Series,
    title: str,
    description: str,
    y_label: str,
    overall_label: str,
    y_max: float | None = None,
) -> SafeString:
    """A weekly bar chart with a dashed line at the overall figure; every text escaped, every bar titled."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = y_max or _nice_ceiling(max([w.value or 0 for w in series.weeks] + [series.overall or 0]))
    step = plot_w / max(len(series.weeks), 1)
    bar_w = step * 0.62

    def y(value: float) -> float:
        return TOP + plot_h - (value / top) * plot_h

    out = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    for i in range(5):  # horizontal grid lines and y ticks
        value = top * i / 4
        out.append(
            f'<line class="chart-grid" stroke="#e3e7ec" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="chart-tick" {TEXT} x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    label_every = 2 if len(series.weeks) > 8 else 1
    for index, week in enumerate(series.weeks):
        x = LEFT + index * step + (step - bar_w) / 2
        if week.value is not None:
            height = max(plot_h * week.value / top, 1.5)
            tip = f"Week of {week.start:%d %b %Y}: {_number(week.value)} {series.unit} ({week.detail})"
            out.append(
                f'<rect class="chart-bar" fill="#2f6fad" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar_w:.1f}" '
                f'height="{height:.1f}"><title>{escape(tip)}</title></rect>'
            )
        if index % label_every == 0:
            out.append(
                f'<text class="chart-tick" {TEXT} x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 16}" '
                f'text-anchor="middle">{escape(week.label)}</text>'
            )
    out.append(
        f'<line class="chart-axis" stroke="#8a94a0" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
        f'<line class="chart-axis" stroke="#8a94a0" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>'
    )
    if series.overall is not None:
        line_y = y(min(series.overall, top))
        out.append(
            f'<line class="chart-overall" stroke="#b3261e" stroke-width="1.5" stroke-dasharray="6 4" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{line_y:.1f}" y2="{line_y:.1f}"/>'
            f'<text class="chart-overall-label" fill="#8a1c1c" font-size="12" font-weight="600" stroke="#ffffff" stroke-width="4" paint-order="stroke" x="{WIDTH - RIGHT - 4}" y="{line_y - 5:.1f}" text-anchor="end">'
            f"{escape(overall_label)}</text>"
        )
    out.append(
        f'<text class="chart-axis-label" {LABEL} x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
        "Week starting (UTC)</text>"
        f'<text class="chart-axis-label" {LABEL} transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    if not series.total:
        out.append(
            f'<text class="chart-empty" {LABEL} x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            'text-anchor="middle">No data in the last 90 days</text>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every interpolated text went through escape() above


@dataclass
class Chart:
    """A drawn chart with the series behind it (the page shows the series again as a table)."""

    key: str
    heading: str
    summary: str
    svg: SafeString
    series: Series
    value_heading: str


def dashboard_charts(*, product_ids: list[int], now: datetime | None = None) -> list[Chart]:
    now = now or timezone.now()
    lead = lead_time_series(product_ids=product_ids, now=now)
    if lead.total:
        lead_summary = (
            f"Median {_number(lead.overall)} {lead.unit} from change approval to production over "
            f"{lead.total} change(s) in the last {WINDOW_DAYS} days (measured to the {lead.source})."
        )
    else:
        lead_summary = f"No approved change reached production in the last {WINDOW_DAYS} days."
    rate = rejection_rate_series(product_ids=product_ids, now=now)
    if rate.total:
        rejected = round((rate.overall or 0) * rate.total / 100)
        rate_summary = (
            f"{_number(rate.overall)}% of {rate.total} promotion decision(s) in the last {WINDOW_DAYS} days "
            f"were rejections ({rejected} rejected)."
        )
    else:
        rate_summary = f"No promotion was decided in the last {WINDOW_DAYS} days."
    return [
        Chart(
            key="lead-time",
            heading="Lead time: change approval → production",
            summary=lead_summary,
            svg=bar_chart_svg(
                chart_id="chart-lead-time",
                series=lead,
                title=f"Weekly median lead time from change approval to production, in {lead.unit}",
                description=lead_summary,
                y_label=f"Median lead time ({lead.unit})",
                overall_label=(
                    f"90-day median {_number(lead.overall)} {lead.unit}" if lead.overall is not None else ""
                ),
            ),
            series=lead,
            value_heading=f"Median ({lead.unit})",
        ),
        Chart(
            key="rejection-rate",
            heading="Promotion rejection rate",
            summary=rate_summary,
            svg=bar_chart_svg(
                chart_id="chart-rejection-rate",
                series=rate,
                title="Weekly share of promotion decisions that were rejections, in percent",
                description=rate_summary,
                y_label="Rejected (%)",
                overall_label=f"90-day rate {_number(rate.overall)}%" if rate.overall is not None else "",
                y_max=100.0,
            ),
            series=rate,
            value_heading="Rejected (%)",
        ),
    ]
