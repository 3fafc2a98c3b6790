"""The dashboard's rollups: kept by every save equal to a recomputation from the issues, on
random issues walked through the workflow; and the bureau's figures from them equal to the
figures counted from the issues, for whole months, edges and the limits passed now."""

from __future__ import annotations

import contextlib
import io
import random
from datetime import date, datetime, timedelta
from statistics import median
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from supervision import rollups, services, stats
from supervision.models import Issue, Patrol

from .factories import image_file, make_neighbourhood, make_project

S = Issue.Status
R = Issue.Rating
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def local(*args) -> datetime:
    return timezone.make_aware(datetime(*args))


def assert_rollups_equal_recomputation() -> None:
    stored, recomputed = rollups.stored().nonzero(), rollups.recompute().nonzero()
    for name in recomputed:
        extra = {k: v for k, v in stored[name].items() if recomputed[name].get(k) != v}
        missing = {k: v for k, v in recomputed[name].items() if stored[name].get(k) != v}
        assert (name, extra) == (name, missing)


def backdate(issue: Issue, created: datetime, sign_within: timedelta) -> Issue:
    """Filed at ``created`` (saved, as the rollups follow saves), with its signing limit."""
    issue.created_at = created
    issue.sign_for_due_at = created + sign_within
    issue.save()
    return issue


class Walker:
    """Random issues of Alice's and Bob's, walked through the services at chosen moments."""

    def __init__(self, world, rng: random.Random):
        self.world, self.rng = world, rng
        # A third project without a contractor, and Bob on Alice's projects (to support).
        self.bare = make_project(make_neighbourhood(world.anyang, "安阳新村"), contractor=None)
        world.alice.supervisor.projects.add(self.bare)
        world.bob.supervisor.projects.add(world.project)
        self.issues: list[tuple[Issue, datetime]] = []
        self.clock: dict[int, datetime] = {}

    def file(self) -> None:
        w, rng = self.world, self.rng
        project = rng.choice([w.project, w.project, self.bare, w.other_project])
        reporter = w.bob if project == w.other_project else w.alice
        category = rng.choice(["quality", "progress", "safety", "civilised", "other"])
        issue = w.submit(reporter=reporter, project=project, category=category)
        created = local(2025, rng.randint(1, 12), rng.randint(1, 28)) + rng.choice(
            [
                timedelta(0),  # local midnight: UTC is the day before
                DAY - timedelta(microseconds=1),  # the last moment of the local day
                timedelta(seconds=rng.randrange(86400), microseconds=rng.randrange(10**6)),
            ]
        )
        backdate(issue, created, rng.choice([HOUR, DAY, 3 * DAY]))
        if rng.random() < 0.15:
            issue.is_warranty = True
            issue.save(update_fields=["is_warranty"])
        self.issues.append((issue, created))
        self.clock[issue.pk] = created

    def step(self, issue: Issue, at: datetime) -> None:
        """One random step allowed from the issue's state, at ``at`` (refusals skipped)."""
        w, rng = self.world, self.rng
        yuhai = issue.project_id == w.other_project.pk
        staff = w.other_staff if yuhai else w.handler
        reporter = w.bob if yuhai else w.alice
        contractor = w.other_contractor if yuhai else w.contractor
        steps = {
            S.SUBMITTED: [
                lambda: services.accept_issue(issue, actor=staff),
                lambda: services.accept_issue(issue, actor=staff),
                lambda: services.answer_issue(issue, actor=staff, text="已纳入方案"),
                lambda: services.reject_issue(issue, actor=staff, text="重复反映"),
                lambda: services.withdraw_issue(issue, actor=reporter, text="已自行解决"),
                lambda: services.support_issue(issue, actor=w.bob),
            ],
            S.ACCEPTED: [
                lambda: services.dispatch_issue(issue, actor=staff, department=contractor),
                lambda: services.rectify_issue(
                    issue, actor=staff, text="已整改", photos=[image_file()]
                ),
            ],
            S.IN_PROGRESS: [
                lambda: services.rectify_issue(
                    issue, actor=staff, text="已整改", photos=[image_file()]
                ),
                lambda: services.support_issue(issue, actor=w.bob),
            ],
            S.RECTIFIED: [
                lambda: services.verify_issue(issue, actor=reporter, rating=rng.choice(R.values)),
                lambda: services.reopen_issue(issue, actor=reporter, text="没有修好"),
            ],
            S.ANSWERED: [
                lambda: services.verify_issue(issue, actor=reporter, rating=rng.choice(R.values)),
                lambda: services.reopen_issue(issue, actor=reporter, text="请再看看"),
            ],
        }.get(issue.status)
        if not steps:
            return
        with (
            mock.patch("django.utils.timezone.now", return_value=at),
            contextlib.suppress(services.WorkflowError),  # refused: no step
        ):
            rng.choice(steps)()
        issue.refresh_from_db()

    def walk(self) -> None:
        """One step for each issue, a while after its last."""
        for issue, _created in self.issues:
            issue.refresh_from_db()
            at = self.clock[issue.pk] + self.rng.choice(
                [3 * MINUTE, 3 * MINUTE + timedelta(microseconds=1), 5 * HOUR, 2 * DAY + HOUR]
            )
            self.clock[issue.pk] = at
            self.step(issue, at)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_equal_a_recomputation_through_random_workflows(world, seed):
    rng = random.Random(seed)
    walker = Walker(world, rng)
    for _batch in range(3):
        for _ in range(8):
            walker.file()
        for _ in range(3):
            walker.walk()
        assert_rollups_equal_recomputation()
    # A patrol logged, moved to another month and deleted; a project given another contractor,
    # a neighbourhood moved to another subdistrict; an issue deleted.
    patrol = Patrol.objects.create(project=world.project, supervisor=world.alice)
    Patrol.objects.create(project=world.project, supervisor=world.bob)
    patrol.created_at = local(2025, 4, 1, 0, 0)
    patrol.save()
    assert_rollups_equal_recomputation()
    patrol.delete()
    world.project.contractor = world.other_contractor
    world.project.save()
    assert_rollups_equal_recomputation()
    walker.bare.contractor = world.contractor
    walker.bare.save(update_fields=["contractor"])
    neighbourhood = world.other_project.neighbourhood
    neighbourhood.subdistrict = world.anyang
    neighbourhood.save()
    assert_rollups_equal_recomputation()
    walker.issues[0][0].delete()
    assert_rollups_equal_recomputation()
    # A rebuild leaves what the saves kept.
    before = rollups.stored().nonzero()
    call_command("rebuild_rollups", stdout=io.StringIO())
    assert rollups.stored().nonzero() == before


PERIODS = [
    (None, None),  # all
    (date(2025, 3, 1), date(2025, 8, 31)),  # whole months only
    (date(2025, 2, 14), date(2025, 9, 20)),  # whole months and two edges
    (date(2025, 5, 3), date(2025, 5, 20)),  # inside one month
    (date(2025, 6, 1), None),
    (None, date(2025, 6, 15)),
]


@pytest.fixture
def walked(world):
    walker = Walker(world, random.Random(7))
    for _ in range(30):
        walker.file()
    for _ in range(4):
        walker.walk()
    for month in (2, 5, 9):
        Patrol.objects.create(
            project=world.project, supervisor=world.alice, created_at=local(2025, month, 14, 9)
        )
    return walker


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_the_bureaus_figures_from_the_rollups_equal_those_counted_from_the_issues(
    walked, start, end
):
    period = stats.Period(start, end, "")
    now = timezone.now()
    issues = period.apply(Issue.objects.all())
    from_issues = stats.figures_of(stats.live_cube(issues, period.apply(Patrol.objects.all()), now))
    assert stats.figures_of(stats.bureau_cube(period, now)) == from_issues


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_the_figures_count_what_plain_queries_count(walked, start, end):
    """Against the straightforward computation: counts by the ORM, medians exactly."""
    period = stats.Period(start, end, "")
    now = timezone.now()
    issues = period.apply(Issue.objects.all())
    head = stats.figures_of(stats.bureau_cube(period, now))["headline"]
    assert head["filed"] == issues.count()
    assert head["closed"] == issues.filter(status=S.CLOSED).count()
    assert head["open"] == issues.filter(status__in=Issue.OPEN_STATUSES).count()
    assert head["overdue"] == issues.filter(stats.missed_a_limit(now)).count()
    assert head["reopened"] == issues.filter(reopen_count__gt=0).count()
    assert head["rated"] == issues.exclude(rating="").count()
    assert head["satisfied"] == issues.filter(rating=R.SATISFIED).count()
    assert head["supported"] == issues.filter(support_count__gt=0).count()
    for end_field, key, unit in (
        ("accepted_at", "median_hours_to_sign", HOUR),
        ("rectified_at", "median_days_to_fix", DAY),
    ):
        spans = [
            (getattr(i, end_field) - i.created_at) / unit
            for i in issues.exclude(**{f"{end_field}__isnull": True})
        ]
        if not spans:
            assert head[key] is None
            continue
        exact = round(median(spans), 1)
        # Equal for an odd count; for an even one the two middle values are each rounded to
        # the tenth first, which can move the mean by at most a tenth.
        assert abs(head[key] - exact) <= (0 if len(spans) % 2 else 0.1) + 1e-9, (key, spans)


def test_department_scopes_have_the_same_form(walked, world):
    bureau = stats.dashboard_figures("all", "", "")
    office = stats.dashboard_figures(f"dept{world.office.pk}", "", "")
    assert set(office) == set(bureau)
    assert set(office["headline"]) == set(bureau["headline"])
    (row,) = [r for r in bureau["departments"] if r["department"] == world.office.pk]
    (own,) = [r for r in office["departments"] if r["department"] == world.office.pk]
    assert own == row


def test_durations_on_the_rounding_line_count_alike_in_python_and_sql(world):
    """3 minutes is 0.05 hours: rounded half up, in Python and in both databases' SQL."""
    created = local(2025, 3, 3, 10, 0)
    for taken in (
        3 * MINUTE,
        3 * MINUTE - timedelta(microseconds=1),
        9 * MINUTE,
        timedelta(hours=2, minutes=57),
    ):
        issue = backdate(world.submit(), created, DAY)
        issue.status = S.ACCEPTED
        issue.accepted_at = created + taken
        issue.rectified_at = created + timedelta(days=2, hours=1, minutes=12)  # 2.05 days
        issue.save()
    assert_rollups_equal_recomputation()
    histogram = {
        key[-1]: n
        for key, (n,) in rollups.stored().durations.items()
        if key[0] == "month" and key[-2] == "sign"
    }
    assert histogram == {0: 1, 1: 1, 2: 1, 30: 1}
    fixes = {key[-1] for key in rollups.stored().durations if key[-2] == "fix"}
    assert fixes == {21}


@pytest.mark.parametrize(
    ("histogram", "expected"),
    [
        ({}, None),
        ({20: 1}, 2.0),
        ({10: 1, 20: 1, 60: 1}, 2.0),
        ({10: 1, 20: 1, 50: 1, 100: 1}, 3.5),
        ({10: 1, 11: 1}, 1.1),  # the mean of 1.0 and 1.1, rounded half up
        ({10: 2, 40: 2}, 2.5),
        ({7: 5}, 0.7),
    ],
)
def test_medians_from_histograms(histogram, expected):
    assert stats.median_tenths(histogram) == expected


def test_periods_are_split_into_whole_months_and_edges():
    P = stats.Period
    months, edges = stats._split(P(date(2025, 2, 14), date(2025, 9, 20), ""))
    assert months == (date(2025, 3, 1), date(2025, 8, 1))
    assert [(e.start, e.end) for e in edges] == [
        (date(2025, 2, 14), date(2025, 2, 28)),
        (date(2025, 9, 1), date(2025, 9, 20)),
    ]
    assert stats._split(P(date(2025, 3, 1), date(2025, 3, 31), ""))[1] == []
    months, edges = stats._split(P(date(2025, 5, 3), date(2025, 5, 20), ""))
    assert months is None and len(edges) == 1
    assert stats._split(P(None, None, "")) == ((None, None), [])


def test_a_workflow_step_moves_the_count_in_the_same_transaction(world):
    issue = world.submit()
    counts = {key[6]: m[0] for key, m in rollups.stored().issues.items() if key[0] == "month"}
    assert counts == {S.SUBMITTED: 1}
    services.accept_issue(issue, actor=world.handler)
    counts = {key[6]: m[0] for key, m in rollups.stored().nonzero()["issues"].items()}
    assert counts == {S.ACCEPTED: 1}
