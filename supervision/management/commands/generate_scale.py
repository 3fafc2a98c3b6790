"""Synthetic data at city or province scale, for benchmarks: ``--profile small|province``.

Province: 2,000 neighbourhoods with a project each, 2,000 supervisors, 200,000 issues and about
1,000,000 events, with realistic distributions (most issues closed, some overdue), and photo rows
pointing at a few shared generated files. Bulk inserts in batches; refuses a database that
already holds issues unless ``--force``.
"""

from __future__ import annotations

import io
import random
import time
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from PIL import Image

from accounts.models import User
from supervision import public_cache, rollups, warranty
from supervision.models import (
    Acceptance,
    AcceptanceView,
    Consultation,
    Department,
    Household,
    Issue,
    IssueCounter,
    IssueEvent,
    Neighbourhood,
    Photo,
    Project,
    Region,
    ScopeItem,
    Subdistrict,
    Supervisor,
    Survey,
    SurveyAnswer,
    SurveyAreaAnswer,
)

PROFILES = {
    "small": {"subdistricts": 4, "neighbourhoods": 60, "issues": 3_000, "events_per_issue": 5},
    "province": {
        "subdistricts": 40,
        "neighbourhoods": 2_000,
        "issues": 200_000,
        "events_per_issue": 5,
    },
}
BATCH = 5_000
# status: share of issues (most are closed)
STATUSES = [
    (Issue.Status.CLOSED, 0.70),
    (Issue.Status.IN_PROGRESS, 0.09),
    (Issue.Status.SUBMITTED, 0.05),
    (Issue.Status.ACCEPTED, 0.05),
    (Issue.Status.RECTIFIED, 0.04),
    (Issue.Status.ANSWERED, 0.03),
    (Issue.Status.REJECTED, 0.02),
    (Issue.Status.WITHDRAWN, 0.02),
]
# What supervisors write, so that word search (``?q=漏水``) finds and ranks realistic text: a
# title and a description by the issue's sequence (no draw from the seeded generator, so the
# rest of the data stays the same): each title on one issue in 13, each description on 1 in 7.
TITLES = [
    "{b}号楼顶层漏水",
    "施工围挡倒塌",
    "脚手架未挂安全网",
    "楼道墙面开裂",
    "雨水管堵塞积水",
    "夜间施工噪音扰民",
    "外墙保温层脱落",
    "围挡破损未修复",
    "{b}号楼窗台渗水",
    "材料堆放占用消防通道",
    "路面开挖后未回填",
    "施工扬尘大未洒水",
    "单元门禁损坏",
]
DESCRIPTIONS = [
    "{b}号楼{u}单元住户反映，雨后室内漏水，墙面发霉，请尽快处理。",
    "小区东门施工围挡被风吹倒，影响居民通行，存在安全隐患。",
    "{b}号楼外脚手架未按要求设置防护网，下方有行人经过。",
    "楼道粉刷后墙面多处开裂，施工质量存疑。",
    "道路改造后雨水井堵塞，下雨时路面积水严重。",
    "晚上十点后仍在施工，噪音很大，影响休息。",
]
K = IssueEvent.Kind
HISTORY = {
    Issue.Status.SUBMITTED: [K.SUBMITTED],
    Issue.Status.ACCEPTED: [K.SUBMITTED, K.ACCEPTED],
    Issue.Status.IN_PROGRESS: [K.SUBMITTED, K.ACCEPTED, K.DISPATCHED],
    Issue.Status.RECTIFIED: [K.SUBMITTED, K.ACCEPTED, K.DISPATCHED, K.RECTIFIED],
    Issue.Status.CLOSED: [K.SUBMITTED, K.ACCEPTED, K.DISPATCHED, K.RECTIFIED, K.VERIFIED],
    Issue.Status.ANSWERED: [K.SUBMITTED, K.ANSWERED],
    Issue.Status.REJECTED: [K.SUBMITTED, K.REJECTED],
    Issue.Status.WITHDRAWN: [K.SUBMITTED, K.WITHDRAWN],
}
STATUS_AFTER = {
    K.SUBMITTED: Issue.Status.SUBMITTED,
    K.ACCEPTED: Issue.Status.ACCEPTED,
    K.DISPATCHED: Issue.Status.IN_PROGRESS,
    K.RECTIFIED: Issue.Status.RECTIFIED,
    K.VERIFIED: Issue.Status.CLOSED,
    K.ANSWERED: Issue.Status.ANSWERED,
    K.REJECTED: Issue.Status.REJECTED,
    K.WITHDRAWN: Issue.Status.WITHDRAWN,
}


class Command(BaseCommand):
    help = "生成大规模测试数据（small 或 province）用于性能测试。"

    def add_arguments(self, parser):
        parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
        parser.add_argument("--force", action="store_true", help="even if issues exist")
        parser.add_argument("--seed", type=int, default=2023)

    def handle(self, *args, profile: str, force: bool, seed: int, **options) -> None:
        if Issue.objects.exists() and not force:
            raise CommandError("数据库里已有问题数据；在空数据库上运行，或加 --force。")
        spec = PROFILES[profile]
        rng = random.Random(seed)
        started = time.monotonic()
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=OFF")
        with transaction.atomic():
            world = self._world(spec, rng)
        issues = self._issues(spec, rng, world)
        with transaction.atomic():
            after = self._after_works(rng, world)
        public_cache.public_changed()  # bulk inserts send no signals
        rollups.rebuild()  # nor do they count in the dashboard's rollups
        # Fresh statistics for the query planner, as after any bulk load.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"{profile}: {len(world['projects'])} projects, {len(world['supervisors'])} supervisors, "
            f"{issues['issues']} issues, {issues['events']} events, {issues['photos']} photos, "
            f"{after['accepted']} accepted projects with {after['households']} households, "
            f"{after['answers']} survey answers, {after['visits']} 回头看 in {elapsed:.0f} s"
        )

    # --- the world ---------------------------------------------------------------------------

    def _world(self, spec: dict, rng: random.Random) -> dict:
        password = make_password("renovate-2023")
        # One county-level region holds it all (scale profiles by region are for later).
        region = Region.objects.ruian()
        subdistricts = Subdistrict.objects.bulk_create(
            [
                Subdistrict(region=region, name=f"第{i + 1}街道", code=f"s{i + 1:03d}")
                for i in range(spec["subdistricts"])
            ]
        )
        bureau = Department.objects.create(
            region=region, name="省住房和城乡建设厅（测试）", kind=Department.Kind.BUREAU
        )
        offices = Department.objects.bulk_create(
            [
                Department(
                    region=region,
                    name=f"{s.name}办事处",
                    kind=Department.Kind.SUBDISTRICT_OFFICE,
                    subdistrict=s,
                )
                for s in subdistricts
            ]
        )
        contractors = Department.objects.bulk_create(
            [
                Department(
                    region=region, name=f"测试建设公司{i + 1:02d}", kind=Department.Kind.CONTRACTOR
                )
                for i in range(max(3, spec["subdistricts"] // 2))
            ]
        )
        staff = [
            User(
                username=f"staff{i + 1:03d}",
                password=password,
                role=User.Role.STAFF,
                department=office,
                display_name=f"{office.name}工作人员",
            )
            for i, office in enumerate(offices)
        ]
        staff.append(
            User(
                username="bureau001",
                password=password,
                role=User.Role.BUREAU,
                department=bureau,
                region=region,
            )
        )
        User.objects.bulk_create(staff)
        n = spec["neighbourhoods"]
        hoods = Neighbourhood.objects.bulk_create(
            [
                Neighbourhood(
                    subdistrict=subdistricts[i % len(subdistricts)],
                    name=f"测试小区{i + 1:04d}",
                    address=f"测试路 {i + 1} 号",
                    year_built=1975 + i % 30,
                    buildings=4 + i % 20,
                    households=100 + i % 900,
                )
                for i in range(n)
            ],
            batch_size=BATCH,
        )
        year = timezone.localdate().year
        statuses = [s for s, _ in Project.Status.choices]
        projects = Project.objects.bulk_create(
            [
                Project(
                    neighbourhood=hood,
                    name=f"{hood.name}改造工程",
                    year=year - (i % 3),
                    status=statuses[rng.randrange(len(statuses))],
                    contractor=contractors[i % len(contractors)],
                    to_complete_this_year=i % 5 != 0,
                )
                for i, hood in enumerate(hoods)
            ],
            batch_size=BATCH,
        )
        areas = [a for a, _ in ScopeItem.Area.choices]
        ScopeItem.objects.bulk_create(
            [
                ScopeItem(
                    project=p,
                    area=areas[(i + k) % len(areas)],
                    description="测试改造内容",
                    progress=rng.randrange(101),
                )
                for i, p in enumerate(projects)
                for k in range(3)
            ],
            batch_size=BATCH,
        )
        Through = Project.departments.through
        Through.objects.bulk_create(
            [
                Through(project_id=p.pk, department_id=offices[i % len(offices)].pk)
                for i, p in enumerate(projects)
            ],
            batch_size=BATCH,
        )
        users = User.objects.bulk_create(
            [
                User(
                    username=f"sup{i + 1:05d}",
                    password=password,
                    role=User.Role.SUPERVISOR,
                    region=region,
                    display_name=f"监督员{i + 1}",
                )
                for i in range(n)
            ],
            batch_size=BATCH,
        )
        today = timezone.localdate()
        supervisors = Supervisor.objects.bulk_create(
            [
                Supervisor(
                    user=u,
                    neighbourhood=hoods[i],
                    appointed_on=today - timedelta(days=400),
                    term_ends_on=today + timedelta(days=700),
                    certificate_number=f"T-{i + 1:05d}",
                )
                for i, u in enumerate(users)
            ],
            batch_size=BATCH,
        )
        Watch = Supervisor.projects.through
        Watch.objects.bulk_create(
            [
                Watch(supervisor_id=s.pk, project_id=projects[i].pk)
                for i, s in enumerate(supervisors)
            ],
            batch_size=BATCH,
        )
        return {
            "projects": projects,
            "offices": {o.subdistrict_id: o for o in offices},
            "contractors": contractors,
            "supervisors": supervisors,
            "users": users,
            "staff": {o.pk: u for o, u in zip(offices, staff, strict=False)},
        }

    # --- after the works ---------------------------------------------------------------------

    def _after_works(self, rng: random.Random, world: dict) -> dict:
        """The accepted projects' life after the works: each accepted within the last three
        years, with a household roll, a passed acceptance with its views, a closed survey with
        answers from about 40 % of the households, and the 回头看 the sweep books."""
        today = timezone.localdate()
        accepted = [p for p in world["projects"] if p.status == Project.Status.ACCEPTED]
        for project in accepted:
            project.acceptance_actual = today - timedelta(days=rng.randrange(20, 3 * 365))
        Project.objects.bulk_update(accepted, ["acceptance_actual"], batch_size=BATCH)
        supervisor_of = {
            project_id: world["users"][i].pk
            for i, project_id in enumerate(p.pk for p in world["projects"])
        }
        consultations = Consultation.objects.bulk_create(
            [
                Consultation(
                    project=p,
                    title="住户名册",
                    opens_on=p.acceptance_actual - timedelta(days=400),
                    closes_on=p.acceptance_actual - timedelta(days=386),
                )
                for p in accepted
            ],
            batch_size=BATCH,
        )
        alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
        households = Household.objects.bulk_create(
            [
                Household(
                    consultation=c,
                    building=str(1 + k // 12),
                    unit=str(1 + k % 2),
                    room=f"{1 + (k % 12) // 2}0{1 + k % 2}",
                    code="".join(rng.choice(alphabet) for _ in range(12)),
                )
                for c in consultations
                for k in range(36)
            ],
            batch_size=BATCH,
        )
        roll = {}
        for h in households:
            roll.setdefault(h.consultation.project_id, []).append(h)
        acceptances = Acceptance.objects.bulk_create(
            [
                Acceptance(
                    project=p,
                    held_on=p.acceptance_actual,
                    place="小区党群服务点",
                    status=Acceptance.Status.PASSED,
                    outcome="同意验收的居民代表 5 / 5 户，无未办结的紧急问题，验收通过。",
                )
                for p in accepted
            ],
            batch_size=BATCH,
        )
        agree = AcceptanceView.Opinion.AGREE
        AcceptanceView.objects.bulk_create(
            [
                AcceptanceView(
                    acceptance=a,
                    role=AcceptanceView.Role.SUPERVISOR,
                    user_id=supervisor_of[a.project_id],
                    opinion=agree,
                )
                for a in acceptances
            ]
            + [
                AcceptanceView(
                    acceptance=a,
                    role=AcceptanceView.Role.REPRESENTATIVE,
                    household=h,
                    opinion=agree,
                )
                for a in acceptances
                for h in roll[a.project_id][::7][:5]
            ],
            batch_size=BATCH,
        )
        areas = {}
        for item in ScopeItem.objects.filter(project__in=accepted).values("project_id", "area"):
            areas.setdefault(item["project_id"], set()).add(item["area"])
        surveys = Survey.objects.bulk_create(
            [
                Survey(
                    project=p,
                    opens_on=p.acceptance_actual + timedelta(days=7),
                    closes_on=p.acceptance_actual + timedelta(days=28),
                    areas=sorted(areas.get(p.pk, ())),
                )
                for p in accepted
                if p.acceptance_actual + timedelta(days=28) < today
            ],
            batch_size=BATCH,
        )
        ratings = ["satisfied"] * 6 + ["basically_satisfied"] * 3 + ["unsatisfied"]
        answers = SurveyAnswer.objects.bulk_create(
            [
                SurveyAnswer(
                    survey=survey,
                    household=h,
                    overall=rng.choice(ratings),
                    conduct=rng.choice(ratings),
                )
                for survey in surveys
                for h in roll[survey.project_id]
                if rng.random() < 0.4
            ],
            batch_size=BATCH,
        )
        area_of = {survey.pk: survey.areas for survey in surveys}
        SurveyAreaAnswer.objects.bulk_create(
            [
                SurveyAreaAnswer(answer=a, area=area, rating=rng.choice(ratings))
                for a in answers
                for area in area_of[a.survey_id]
            ],
            batch_size=BATCH,
        )
        visits = warranty.schedule_return_visits(today)
        return {
            "accepted": len(accepted),
            "households": len(households),
            "answers": len(answers),
            "visits": len(visits),
        }

    # --- issues, events, photos --------------------------------------------------------------

    def _shared_photos(self) -> list[tuple[str, str]]:
        names = []
        for i in range(4):
            image = Image.new("RGB", (1600, 1200), (40 + 50 * i, 120, 200 - 40 * i))
            for size, suffix in (((1600, 1200), ""), ((400, 300), "_t")):
                out = io.BytesIO()
                image.resize(size).save(out, "JPEG", quality=70)
                name = default_storage.save(
                    f"photos/bench/shared{i}{suffix}.jpg", io.BytesIO(out.getvalue())
                )
                names.append(name)
        return list(zip(names[0::2], names[1::2], strict=True))

    def _issues(self, spec: dict, rng: random.Random, world: dict) -> dict:
        total = spec["issues"]
        now = timezone.now()
        year = timezone.localtime(now).year
        weights = [w for _, w in STATUSES]
        choices = [s for s, _ in STATUSES]
        categories = [c for c, _ in Issue.Category.choices if c != Issue.Category.OPINION]
        projects, users = world["projects"], world["users"]
        shared = self._shared_photos()
        counts = {"issues": 0, "events": 0, "photos": 0}
        span = 3 * 365 * 24 * 3600
        for start in range(0, total, BATCH):
            size = min(BATCH, total - start)
            batch, plans = [], []
            for k in range(size):
                seq = start + k + 1
                i = rng.randrange(len(projects))
                project = projects[i]
                status = rng.choices(choices, weights)[0]
                created = now - timedelta(seconds=rng.randrange(span))
                if status in Issue.OPEN_STATUSES and rng.random() < 0.5:
                    created = now - timedelta(days=rng.randrange(1, 40))
                office = world["offices"][project.neighbourhood.subdistrict_id]
                history = HISTORY[status]
                overdue = status in Issue.OPEN_STATUSES and rng.random() < 0.25
                issue = Issue(
                    reference=f"{year}-{seq:06d}",
                    year=year,
                    sequence=seq,
                    project=project,
                    reporter=users[i],
                    category=rng.choice(categories),
                    title=TITLES[seq % len(TITLES)].format(b=seq % 30 + 1),
                    description=DESCRIPTIONS[seq % 7 % len(DESCRIPTIONS)].format(
                        b=seq % 30 + 1, u=seq % 4 + 1
                    ),
                    status=status,
                    department=office,
                    contractor=project.contractor if K.DISPATCHED in history else None,
                    created_at=created,
                    sign_for_due_at=created + timedelta(days=1),
                    is_public=status == Issue.Status.CLOSED and rng.random() < 0.3,
                )
                steps = [
                    created + timedelta(hours=6 * n + rng.randrange(6)) for n in range(len(history))
                ]
                if K.ACCEPTED in history:
                    issue.accepted_at = steps[1]
                    # Overdue: the deadline fell between filing and now.
                    issue.rectify_due_at = (
                        created + (now - created) / 2 if overdue else steps[1] + timedelta(days=9)
                    )
                if K.RECTIFIED in history:
                    issue.rectified_at = steps[3]
                if status in (Issue.Status.CLOSED, Issue.Status.REJECTED, Issue.Status.WITHDRAWN):
                    issue.closed_at = steps[-1]
                if status == Issue.Status.CLOSED:
                    issue.rating = rng.choices(
                        [
                            Issue.Rating.SATISFIED,
                            Issue.Rating.BASICALLY_SATISFIED,
                            Issue.Rating.UNSATISFIED,
                        ],
                        [0.8, 0.15, 0.05],
                    )[0]
                if status == Issue.Status.SUBMITTED and overdue:
                    issue.sign_for_due_at = now - timedelta(hours=3)
                if issue.category == Issue.Category.SAFETY and rng.random() < 0.2:
                    issue.urgency = Issue.Urgency.URGENT
                issue.due_at = issue.next_deadline  # bulk_create skips save(), which keeps it
                batch.append(issue)
                plans.append((history, steps))
            with transaction.atomic():
                Issue.objects.bulk_create(batch, batch_size=BATCH)
                if connection.vendor != "postgresql" or batch[0].pk is None:
                    ids = dict(
                        Issue.objects.filter(
                            sequence__gt=start, sequence__lte=start + size, year=year
                        ).values_list("sequence", "pk")
                    )
                    for issue in batch:
                        issue.pk = ids[issue.sequence]
                events, photos = [], []
                for issue, (history, steps) in zip(batch, plans, strict=True):
                    previous = ""
                    for kind, moment in zip(history, steps, strict=True):
                        to_status = STATUS_AFTER[kind]
                        actor = (
                            issue.reporter
                            if kind in (K.SUBMITTED, K.VERIFIED, K.WITHDRAWN)
                            else None
                        )
                        events.append(
                            IssueEvent(
                                issue_id=issue.pk,
                                kind=kind,
                                actor_id=actor.pk
                                if actor
                                else world["staff"][issue.department_id].pk,
                                from_status=previous,
                                to_status=to_status,
                                text="" if kind == K.SUBMITTED else "已处理。",
                                created_at=moment,
                            )
                        )
                        previous = to_status
                    extra = spec["events_per_issue"] - len(history)
                    for n in range(max(0, extra)):
                        events.append(
                            IssueEvent(
                                issue_id=issue.pk,
                                kind=K.COMMENTED,
                                actor_id=issue.reporter_id,
                                from_status=issue.status,
                                to_status=issue.status,
                                text=f"补充说明 {n + 1}",
                                created_at=steps[-1] + timedelta(hours=n + 1),
                            )
                        )
                    if issue.sequence % 2 == 0:
                        web, thumb = shared[issue.sequence % len(shared)]
                        photos.append(
                            Photo(
                                issue_id=issue.pk,
                                kind=Photo.Kind.BEFORE,
                                image=web,
                                thumbnail=thumb,
                                width=1600,
                                height=1200,
                                created_at=issue.created_at,
                            )
                        )
                IssueEvent.objects.bulk_create(events, batch_size=BATCH)
                Photo.objects.bulk_create(photos, batch_size=BATCH)
            counts["issues"] += size
            counts["events"] += len(events)
            counts["photos"] += len(photos)
            self.stdout.write(f"  {counts['issues']} / {total} issues", ending="\r")
        IssueCounter.objects.update_or_create(year=year, defaults={"last": total})
        self.stdout.write("")
        return counts
