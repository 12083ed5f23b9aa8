"""The migration page: users moved over per day and by way, failures per day, and per connection how
many moved in all and, where the legacy store can count, how many are left; as charts and as a table."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask import Response, request
from markupsafe import Markup
from sqlalchemy import select

from idp import redact
from idp.admin.chart import Series, stacked_bars
from idp.admin.views import bp, render
from idp.connections import status
from idp.connections.legacy import PROFILE_REJECTED, SCRIPT_ERROR
from idp.connections.models import Connection
from idp.db import db

PERIODS, DEFAULT_PERIOD = (7, 30, 90), 30
# The ways a user moves over (status.WAYS), as the legend and the tooltips say them.
WAYS = (
    Series("login", "Sign-in", "#2952cc", "solid", "{n} by login"),
    Series("password_reset", "Password reset", "#b35c00", "stripes", "{n} by password reset"),
    Series("import", "Bulk import", "#1e7a45", "dots", "{n} by import"),
)
# What went wrong on idp's side (a wrong password at the legacy store is the user's, not a failure).
FAILURES = (
    Series(SCRIPT_ERROR, "Script errors", "#b3261e", "solid", "{n} script error{s}"),
    Series(PROFILE_REJECTED, "Profiles refused", "#6b4fa0", "stripes", "{n} profile{s} refused"),
)
assert tuple(s.key for s in WAYS) == status.WAYS  # a new way needs its colour and pattern here


@dataclass
class Progress:
    """One connection: moved in all and by way, and what its legacy store says is left."""

    name: str
    disconnected: bool
    moved: int
    by_way: dict[str, int]
    in_window: int
    failures: int
    legacy_total: int | None = None
    remaining: int | None = None
    count_error: str | None = None

    @property
    def done_share(self) -> float:
        """The share of the legacy users moved over, 0 to 1 (for the progress bar)."""
        if not self.legacy_total or self.remaining is None:
            return 0.0
        return (self.legacy_total - self.remaining) / self.legacy_total


@dataclass
class Day:
    """One day of the window: users moved over by way, failures by type."""

    date: str
    moved: dict[str, int]
    failures: dict[str, int]

    @property
    def moved_total(self) -> int:
        """Users moved over that day, every way together."""
        return sum(self.moved.values())

    @property
    def failures_total(self) -> int:
        """Failures that day, every type together."""
        return sum(self.failures.values())


@dataclass
class Report:
    """The page's figures for a window of days and one or every migrating connection."""

    first: date
    last: date
    days: list[Day]
    connections: list[Progress] = field(default_factory=list)

    def moved(self, way: str) -> int:
        """Users moved over one way in the window."""
        return sum(d.moved[way] for d in self.days)

    def failed(self, kind: str) -> int:
        """Failures of one type in the window."""
        return sum(d.failures[kind] for d in self.days)


def _progress(connection: Connection, days: list[Day], first: date, last: date) -> Progress:
    """Add a connection's window to the days, and return its progress."""
    report = status.status(connection)  # runs count_users where the connection has it
    window = status.window(connection, first, last)
    daily = window["daily"]
    for target, moved, failed in zip(days, daily, window["daily_failures"], strict=True):
        for s in WAYS:
            target.moved[s.key] += moved[s.key]
        for s in FAILURES:
            target.failures[s.key] += failed[s.key]
    progress = Progress(
        name=connection.name, disconnected=connection.disconnected_at is not None,
        moved=report["migrated"], by_way={s.key: report["by_source"].get(s.key, 0) for s in WAYS},
        in_window=sum(sum(d[s.key] for s in WAYS) for d in daily),
        failures=sum(window["failures"][s.key] for s in FAILURES),
        legacy_total=report.get("legacy_total"), remaining=report.get("remaining"))
    if report.get("count_error"):
        # Scrubbed where it was raised; scrubbed again here, since this page shows it.
        secrets = redact.secrets_in(connection.configuration)
        progress.count_error = redact.scrub(report["count_error"], secrets)
    return progress


def gather(connections: list[Connection], period: int, today: date) -> Report:
    """Return the figures of the `period` days up to today (UTC), for these connections together."""
    first = today - timedelta(days=period - 1)
    days = [Day((first + timedelta(days=n)).isoformat(), dict.fromkeys(status.WAYS, 0),
                {s.key: 0 for s in FAILURES}) for n in range(period)]
    report = Report(first, today, days)
    report.connections = [_progress(c, days, first, today) for c in connections]
    return report


def charts(report: Report) -> tuple[Markup, Markup]:
    """Draw the moves and the failures of the window."""
    dates = [d.date for d in report.days]
    span = f"from {report.first.isoformat()} to {report.last.isoformat()} (UTC days)"
    moved = stacked_bars(
        "moved-chart", "Users moved over per day, by way",
        f"A stacked bar a day {span}: users who moved over by sign-in, password reset or bulk import. "
        "The table below has the same numbers.",
        dates, WAYS, {s.key: [d.moved[s.key] for d in report.days] for s in WAYS})
    failed = stacked_bars(
        "failures-chart", "Migration failures per day",
        f"A stacked bar a day {span}: scripts that failed and legacy profiles refused. "
        "The table below has the same numbers.",
        dates, FAILURES, {s.key: [d.failures[s.key] for d in report.days] for s in FAILURES}, height=200)
    return moved, failed


def _migrating() -> list[Connection]:
    """Every connection that migrates or did (disconnected ones keep their history), oldest first."""
    return list(db.session.scalars(select(Connection).where(Connection.migrating.is_(True))
                                   .order_by(Connection.created_at, Connection.id)))


@bp.get("/migration")
def migration() -> Response:
    """Users moved over per day by way, failures per day, and each connection's progress."""
    errors: list[str] = []
    status_code = 200
    period = DEFAULT_PERIOD
    asked = request.args.get("days", str(DEFAULT_PERIOD))
    if asked.isdigit() and int(asked) in PERIODS:
        period = int(asked)
    else:
        errors.append(f"Show 7, 30 or 90 days; showing {DEFAULT_PERIOD}.")
        status_code = 400
    every = _migrating()
    name = request.args.get("connection", "")
    chosen = [c for c in every if c.name == name] if name else every
    if name and not chosen:
        errors.append("No migrating connection has that name; showing every one.")
        chosen, name = every, ""
        status_code = 404 if status_code == 200 else status_code
    report = gather(chosen, period, datetime.now(UTC).date())
    moved_chart, failures_chart = charts(report)
    return render("admin/migration.html", status=status_code, report=report, moved_chart=moved_chart,
                  failures_chart=failures_chart, ways=WAYS, failure_kinds=FAILURES, periods=PERIODS,
                  period=period, names=[c.name for c in every], chosen=name, errors=errors)
