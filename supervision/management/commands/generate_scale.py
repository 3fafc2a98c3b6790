"""Synthetic data at city, province or country scale, for benchmarks:
``--profile small|province|country``.

- small: 60 neighbourhoods in two counties of 温州 (瑞安市 and 鹿城区), 3,000 issues.
- province: 浙江省 with its 11 cities and 90 county-level divisions (real names and GB/T 2260
  codes), 2,000 neighbourhoods with a project each, 2,000 supervisors, 200,000 issues and about
  1,000,000 events.
- country: ten provinces (浙江 as above, nine more with real cities and generated counties), 891
  counties, 20,000 neighbourhoods and projects, 20,000 supervisors, 2,000,000 issues and about
  10,000,000 events.

Each county has its own 住建局 (a bureau department and its coordinator), subdistricts with
their offices and staff, and contractors; neighbourhoods are spread over the counties with
uneven weights, and every issue is routed to departments of its own county. Two oversight
accounts watch from above: ``shengting`` (浙江省) and ``wenzhou`` (温州市). Realistic
distributions (most issues closed, some overdue), photo rows pointing at a few shared generated
files. Issues, events and photos are written ``BATCH`` issues at a time, so memory does not grow
with the profile: with ``COPY`` on PostgreSQL (psycopg 3), with ``bulk_create`` elsewhere.
Refuses a database that already holds issues unless ``--force``.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

from django.contrib.auth.hashers import make_password
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
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

# --- the regions ------------------------------------------------------------------------------

# 浙江省's 11 cities and 90 county-level divisions (GB/T 2260, as of 2021).
ZHEJIANG = {
    ("330100", "杭州市"): "330102上城区 330105拱墅区 330106西湖区 330108滨江区 330109萧山区 "
    "330110余杭区 330111富阳区 330112临安区 330113临平区 330114钱塘区 330122桐庐县 330127淳安县 "
    "330182建德市",
    ("330200", "宁波市"): "330203海曙区 330205江北区 330206北仑区 330211镇海区 330212鄞州区 "
    "330213奉化区 330225象山县 330226宁海县 330281余姚市 330282慈溪市",
    ("330300", "温州市"): "330302鹿城区 330303龙湾区 330304瓯海区 330305洞头区 330324永嘉县 "
    "330326平阳县 330327苍南县 330328文成县 330329泰顺县 330381瑞安市 330382乐清市 330383龙港市",
    ("330400", "嘉兴市"): "330402南湖区 330411秀洲区 330421嘉善县 330424海盐县 330481海宁市 "
    "330482平湖市 330483桐乡市",
    ("330500", "湖州市"): "330502吴兴区 330503南浔区 330521德清县 330522长兴县 330523安吉县",
    ("330600", "绍兴市"): "330602越城区 330603柯桥区 330604上虞区 330624新昌县 330681诸暨市 "
    "330683嵊州市",
    ("330700", "金华市"): "330702婺城区 330703金东区 330723武义县 330726浦江县 330727磐安县 "
    "330781兰溪市 330782义乌市 330783东阳市 330784永康市",
    ("330800", "衢州市"): "330802柯城区 330803衢江区 330822常山县 330824开化县 330825龙游县 "
    "330881江山市",
    ("330900", "舟山市"): "330902定海区 330903普陀区 330921岱山县 330922嵊泗县",
    ("331000", "台州市"): "331002椒江区 331003黄岩区 331004路桥区 331022三门县 331023天台县 "
    "331024仙居县 331081温岭市 331082临海市 331083玉环市",
    ("331100", "丽水市"): "331102莲都区 331121青田县 331122缙云县 331123遂昌县 331124松阳县 "
    "331125云和县 331126庆元县 331127景宁畲族自治县 331181龙泉市",
}
# The country profile's other provinces: real provinces and prefecture-level cities; nine
# generated county-level divisions under each city (codes ..02 to ..10, as districts start).
PROVINCES = {
    ("320000", "江苏省"): "320100南京 320200无锡 320300徐州 320400常州 320500苏州 320600南通 "
    "320700连云港 320800淮安 320900盐城 321000扬州",
    ("340000", "安徽省"): "340100合肥 340200芜湖 340300蚌埠 340400淮南 340500马鞍山 340600淮北 "
    "340700铜陵 340800安庆 341000黄山 341100滁州",
    ("350000", "福建省"): "350100福州 350200厦门 350300莆田 350400三明 350500泉州 350600漳州 "
    "350700南平 350800龙岩 350900宁德",
    ("360000", "江西省"): "360100南昌 360200景德镇 360300萍乡 360400九江 360500新余 360600鹰潭 "
    "360700赣州 360800吉安 360900宜春 361000抚州",
    ("370000", "山东省"): "370100济南 370200青岛 370300淄博 370400枣庄 370500东营 370600烟台 "
    "370700潍坊 370800济宁 370900泰安 371000威海",
    ("410000", "河南省"): "410100郑州 410200开封 410300洛阳 410400平顶山 410500安阳 410600鹤壁 "
    "410700新乡 410800焦作 410900濮阳 411000许昌",
    ("420000", "湖北省"): "420100武汉 420200黄石 420300十堰 420500宜昌 420600襄阳 420700鄂州 "
    "420800荆门 420900孝感 421000荆州 421100黄冈",
    ("430000", "湖南省"): "430100长沙 430200株洲 430300湘潭 430400衡阳 430500邵阳 430600岳阳 "
    "430700常德 430800张家界 430900益阳 431000郴州",
    ("440000", "广东省"): "440100广州 440200韶关 440300深圳 440400珠海 440500汕头 440600佛山 "
    "440700江门 440800湛江 440900茂名 441200肇庆",
}
ZHEJIANG_CODE, WENZHOU_CODE, RUIAN_CODE = "330000", "330300", "330381"
# Real subdistricts for the two counties of the small profile; elsewhere common names, 城关街道
# first in a 县 (so the province has many 城关街道, each unique only within its county).
SUBDISTRICT_NAMES = {
    RUIAN_CODE: ["安阳街道", "玉海街道", "锦湖街道", "上望街道", "莘塍街道", "汀田街道"],
    "330302": ["五马街道", "松台街道", "南汇街道", "蒲鞋市街道", "大南街道", "双屿街道"],
}
COMMON_SUBDISTRICTS = ["城关街道", "城东街道", "城西街道", "城南街道", "城北街道", "新城街道"]


@dataclass(frozen=True)
class Place:
    """One region to create: its code, name, level and parent's code."""

    code: str
    name: str
    level: str
    parent: str | None


def _split(entries: str) -> list[tuple[str, str]]:
    return [(entry[:6], entry[6:]) for entry in entries.split()]


def zhejiang(counties: Iterable[str] | None = None) -> list[Place]:
    """浙江省, its cities and counties, from the top down (only ``counties`` and their
    ancestors when given)."""
    wanted = set(counties) if counties is not None else None
    places = [Place(ZHEJIANG_CODE, "浙江省", Region.Level.PROVINCE, None)]
    for (city_code, city), entries in ZHEJIANG.items():
        below = [
            Place(code, name, Region.Level.COUNTY, city_code)
            for code, name in _split(entries)
            if wanted is None or code in wanted
        ]
        if below:
            places += [Place(city_code, city, Region.Level.CITY, ZHEJIANG_CODE), *below]
    return places


def country() -> list[Place]:
    """浙江 and nine more provinces, each city with nine generated county-level divisions."""
    places = zhejiang()
    for (province_code, province), entries in PROVINCES.items():
        places.append(Place(province_code, province, Region.Level.PROVINCE, None))
        for city_code, city in _split(entries):
            places.append(Place(city_code, f"{city}市", Region.Level.CITY, province_code))
            places += [
                Place(
                    f"{city_code[:4]}{k:02d}",
                    f"{city}第{k - 1}区",
                    Region.Level.COUNTY,
                    city_code,
                )
                for k in range(2, 11)
            ]
    return places


@dataclass(frozen=True)
class Profile:
    places: list[Place]
    subdistricts_per_county: int
    contractors_per_county: int
    neighbourhoods: int
    issues: int
    events_per_issue: int = 5
    # A county's share of the neighbourhoods relative to the others (drawn when not given).
    weights: dict[str, float] = field(default_factory=dict)


PROFILES = {
    "small": Profile(
        zhejiang([RUIAN_CODE, "330302"]),
        subdistricts_per_county=2,
        contractors_per_county=2,
        neighbourhoods=60,
        issues=3_000,
        weights={RUIAN_CODE: 2.0, "330302": 1.0},
    ),
    "province": Profile(
        zhejiang(),
        subdistricts_per_county=3,
        contractors_per_county=2,
        neighbourhoods=2_000,
        issues=200_000,
    ),
    "country": Profile(
        country(),
        subdistricts_per_county=3,
        contractors_per_county=2,
        neighbourhoods=20_000,
        issues=2_000_000,
    ),
}
# Issues per batch (with their events and photos: one transaction, bounded memory).
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
REPORTER_STEPS = {K.SUBMITTED, K.VERIFIED, K.WITHDRAWN}
RATINGS = [Issue.Rating.SATISFIED, Issue.Rating.BASICALLY_SATISFIED, Issue.Rating.UNSATISFIED]
ENDED = {Issue.Status.CLOSED, Issue.Status.REJECTED, Issue.Status.WITHDRAWN}


class Rows:
    """Rows of one model, written in one go: ``COPY`` on PostgreSQL (no model instances, no SQL
    to parse), ``bulk_create`` elsewhere. A row is a dict of attnames; the rest of the model's
    fields take their defaults, as ``bulk_create`` gives them."""

    def __init__(self, model: type[models.Model], with_pk: bool = False) -> None:
        self.model = model
        fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
        self.columns = [f.attname for f in fields]
        self.sql_columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        self.defaults = {f.attname: f.get_default() for f in fields}
        self.auto_now = [f.attname for f in fields if getattr(f, "auto_now", False)]
        self.rows: list[dict] = []

    def add(self, row: dict | None = None, /, **values) -> None:
        """One row: a dict (kept as it is: the caller may fill its ``id`` in after ``write``
        when the database gave it), or keywords."""
        self.rows.append(values if row is None else row)

    def write(self) -> int:
        count, rows = len(self.rows), self.rows
        self.rows = []
        if not rows:
            return 0
        now = timezone.now()
        stamps = dict.fromkeys(self.auto_now, now)
        if connection.vendor == "postgresql":
            table = connection.ops.quote_name(self.model._meta.db_table)
            columns, defaults = self.columns, self.defaults
            sql = f"COPY {table} ({self.sql_columns}) FROM STDIN"
            with connection.cursor() as cursor, cursor.copy(sql) as copy:
                for values in rows:
                    row = {**defaults, **values, **stamps}
                    copy.write_row([row[c] for c in columns])
        else:
            self.model.objects.bulk_create(
                [self.model(**{**values, **stamps}) for values in rows], batch_size=BATCH
            )
        return count


def reserve_ids(model: type[models.Model], count: int) -> list[int] | None:
    """``count`` primary keys from the table's sequence on PostgreSQL (so that rows written with
    ``COPY`` can be referred to at once), None elsewhere."""
    if connection.vendor != "postgresql":
        return None
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [pk for (pk,) in cursor.fetchall()]


def spread(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders), at least one each when
    there are enough."""
    floor = 1 if total >= len(weights) else 0
    rest = total - floor * len(weights)
    scale = rest / sum(weights)
    shares = [w * scale for w in weights]
    counts = [floor + int(s) for s in shares]
    left = total - sum(counts)
    for i in sorted(range(len(weights)), key=lambda i: int(shares[i]) - shares[i])[:left]:
        counts[i] += 1
    return counts


class Command(BaseCommand):
    help = "生成大规模测试数据（small、province 或 country）用于性能测试。"

    def add_arguments(self, parser):
        parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
        parser.add_argument("--force", action="store_true", help="even if issues exist")
        parser.add_argument("--seed", type=int, default=2023)

    def handle(self, *args, profile: str, force: bool, seed: int, **options) -> None:
        if Issue.objects.exists() and not force:
            raise CommandError("数据库里已有问题数据；在空数据库上运行，或加 --force。")
        spec = PROFILES[profile]
        self.verbosity = options.get("verbosity", 1)
        rng = random.Random(seed)
        started = time.monotonic()
        if connection.vendor == "sqlite" and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=OFF")
        with transaction.atomic():
            world = self._world(spec, rng)
        self._step("world", started)
        issues = self._issues(spec, rng, world)
        self._step("issues", started)
        after = self._after_works(rng, world)
        self._step("after the works", started)
        public_cache.public_changed()  # bulk inserts send no signals
        rollups.rebuild()  # nor do they count in the dashboard's rollups
        self._step("rollups", started)
        # Fresh statistics for the query planner, as after any bulk load; on PostgreSQL also
        # the visibility map, without which no index-only scan skips the table.
        # (VACUUM cannot run in a transaction: a test's.)
        vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"{profile}: {world['counties']} counties, {len(world['projects'])} projects, "
            f"{len(world['supervisors'])} supervisors, {issues['issues']} issues, "
            f"{issues['events']} events, {issues['photos']} photos, "
            f"{after['accepted']} accepted projects with {after['households']} households, "
            f"{after['answers']} survey answers, {after['visits']} 回头看 in {elapsed:.0f} s"
        )

    def _step(self, name: str, started: float) -> None:
        if self.verbosity > 1:
            self.stdout.write(f"  {name} done at {time.monotonic() - started:.0f} s")

    # --- the world ---------------------------------------------------------------------------

    def _regions(self, places: list[Place]) -> dict[str, Region]:
        """The profile's regions by code, made where missing (浙江省 → 温州市 → 瑞安市 may be
        there already: ``Region.objects.ruian()``)."""
        regions = {r.code: r for r in Region.objects.filter(code__in=[p.code for p in places])}
        for level in (Region.Level.PROVINCE, Region.Level.CITY, Region.Level.COUNTY):
            missing = [p for p in places if p.level == level and p.code not in regions]
            made = Region.objects.bulk_create(
                [
                    Region(
                        code=p.code,
                        name=p.name,
                        level=p.level,
                        parent=regions[p.parent] if p.parent else None,
                    )
                    for p in missing
                ]
            )
            regions.update({r.code: r for r in made})
        return regions

    def _world(self, spec: Profile, rng: random.Random) -> dict:
        password = make_password("renovate-2023")
        regions = self._regions(spec.places)
        counties = [regions[p.code] for p in spec.places if p.level == Region.Level.COUNTY]
        subdistricts = Subdistrict.objects.bulk_create(
            [
                Subdistrict(region=county, name=name, code=f"s{county.code}-{k + 1}")
                for county in counties
                for k, name in enumerate(self._subdistrict_names(county, spec))
            ],
            batch_size=BATCH,
        )
        bureaus = Department.objects.bulk_create(
            [
                Department(
                    region=county,
                    name=f"{county.name}住房和城乡建设局",
                    kind=Department.Kind.BUREAU,
                )
                for county in counties
            ],
            batch_size=BATCH,
        )
        offices = Department.objects.bulk_create(
            [
                Department(
                    region_id=s.region_id,
                    name=f"{s.name}办事处",
                    kind=Department.Kind.SUBDISTRICT_OFFICE,
                    subdistrict=s,
                )
                for s in subdistricts
            ],
            batch_size=BATCH,
        )
        contractors = Department.objects.bulk_create(
            [
                Department(
                    region=county,
                    name=f"{county.name}测试建设公司{k + 1:02d}",
                    kind=Department.Kind.CONTRACTOR,
                )
                for county in counties
                for k in range(spec.contractors_per_county)
            ],
            batch_size=BATCH,
        )
        contractors_of: dict[int, list[Department]] = {}
        for contractor in contractors:
            contractors_of.setdefault(contractor.region_id, []).append(contractor)
        staff = User.objects.bulk_create(
            [
                User(
                    username=f"staff{i + 1:05d}",
                    password=password,
                    role=User.Role.STAFF,
                    department=office,
                    display_name=f"{office.name}工作人员",
                )
                for i, office in enumerate(offices)
            ],
            batch_size=BATCH,
        )
        # A coordinator for each county's 住建局, and the oversight above: 省住建厅 and 温州市住建局.
        User.objects.bulk_create(
            [
                User(
                    username=f"bureau{bureau.region.code}",
                    password=password,
                    role=User.Role.BUREAU,
                    department=bureau,
                    region=bureau.region,
                    display_name=f"{bureau.name}协调员",
                )
                for bureau in bureaus
            ]
            + [
                User(
                    username=username,
                    password=password,
                    role=User.Role.OVERSIGHT,
                    region=regions[code],
                    display_name=name,
                )
                for username, code, name in (
                    ("shengting", ZHEJIANG_CODE, "浙江省住房和城乡建设厅"),
                    ("wenzhou", WENZHOU_CODE, "温州市住房和城乡建设局"),
                )
            ],
            batch_size=BATCH,
        )
        # Neighbourhoods over the counties, unevenly (瑞安 weighs as an average county), and
        # over each county's subdistricts in turn.
        weights = [spec.weights.get(c.code) or rng.uniform(0.4, 1.6) for c in counties]
        if RUIAN_CODE in [c.code for c in counties] and RUIAN_CODE not in spec.weights:
            weights[[c.code for c in counties].index(RUIAN_CODE)] = 1.0
        subdistricts_of: dict[int, list[Subdistrict]] = {}
        for s in subdistricts:
            subdistricts_of.setdefault(s.region_id, []).append(s)
        places = [
            subdistricts_of[county.pk][k % len(subdistricts_of[county.pk])]
            for county, count in zip(counties, spread(spec.neighbourhoods, weights), strict=True)
            for k in range(count)
        ]
        hoods = Neighbourhood.objects.bulk_create(
            [
                Neighbourhood(
                    subdistrict=subdistrict,
                    name=f"测试小区{i + 1:05d}",
                    address=f"测试路 {i + 1} 号",
                    year_built=1975 + i % 30,
                    buildings=4 + i % 20,
                    households=100 + i % 900,
                )
                for i, subdistrict in enumerate(places)
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
                    contractor=(mine := contractors_of[hood.subdistrict.region_id])[i % len(mine)],
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
        office_of = {o.subdistrict_id: o for o in offices}
        Through = Project.departments.through
        Through.objects.bulk_create(
            [
                Through(project_id=p.pk, department_id=office_of[hood.subdistrict_id].pk)
                for p, hood in zip(projects, hoods, strict=True)
            ],
            batch_size=BATCH,
        )
        # One supervisor per neighbourhood, living there, of its county's programme.
        users = User.objects.bulk_create(
            [
                User(
                    username=f"sup{i + 1:05d}",
                    password=password,
                    role=User.Role.SUPERVISOR,
                    region_id=hood.subdistrict.region_id,
                    display_name=f"监督员{i + 1}",
                )
                for i, hood in enumerate(hoods)
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
            "counties": len(counties),
            "projects": projects,
            # Each project's office: the department of its neighbourhood's subdistrict.
            "office_of": [office_of[hood.subdistrict_id].pk for hood in hoods],
            "supervisors": supervisors,
            "users": users,
            "staff": {office.pk: user.pk for office, user in zip(offices, staff, strict=True)},
        }

    def _subdistrict_names(self, county: Region, spec: Profile) -> list[str]:
        names = SUBDISTRICT_NAMES.get(county.code)
        if names is None:
            names = COMMON_SUBDISTRICTS if county.name.endswith("县") else COMMON_SUBDISTRICTS[1:]
        return names[: spec.subdistricts_per_county]

    # --- after the works ---------------------------------------------------------------------

    def _after_works(self, rng: random.Random, world: dict) -> dict:
        """The accepted projects' life after the works: each accepted within the last three
        years, with a household roll, a passed acceptance with its views, a closed survey with
        answers from about 40 % of the households, and the 回头看 the sweep books. A thousand
        projects at a time, so that memory does not grow with the profile."""
        today = timezone.localdate()
        supervisor_of = {p.pk: world["users"][i].pk for i, p in enumerate(world["projects"])}
        accepted = [p for p in world["projects"] if p.status == Project.Status.ACCEPTED]
        for project in accepted:
            project.acceptance_actual = today - timedelta(days=rng.randrange(20, 3 * 365))
        totals = {"accepted": len(accepted), "households": 0, "answers": 0}
        for start in range(0, len(accepted), 1_000):
            with transaction.atomic():
                chunk = self._accepted(rng, accepted[start : start + 1_000], supervisor_of, today)
            totals["households"] += chunk["households"]
            totals["answers"] += chunk["answers"]
        totals["visits"] = len(warranty.schedule_return_visits(today))
        return totals

    def _accepted(self, rng: random.Random, accepted: list, supervisor_of: dict, today) -> dict:
        Project.objects.bulk_update(accepted, ["acceptance_actual"], batch_size=BATCH)
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
        return {"households": len(households), "answers": len(answers)}

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

    def _issues(self, spec: Profile, rng: random.Random, world: dict) -> dict:
        total = spec.issues
        now = timezone.now()
        year = timezone.localtime(now).year
        weights = [w for _, w in STATUSES]
        choices = [s for s, _ in STATUSES]
        categories = [c for c, _ in Issue.Category.choices if c != Issue.Category.OPINION]
        projects, users, office_of = world["projects"], world["users"], world["office_of"]
        staff = world["staff"]
        shared = self._shared_photos()
        counts = {"issues": 0, "events": 0, "photos": 0}
        span = 3 * 365 * 24 * 3600
        issues = Rows(Issue, with_pk=connection.vendor == "postgresql")
        events, photos = Rows(IssueEvent), Rows(Photo)
        for start in range(0, total, BATCH):
            size = min(BATCH, total - start)
            plans = []
            ids = reserve_ids(Issue, size)
            for k in range(size):
                seq = start + k + 1
                i = rng.randrange(len(projects))
                project = projects[i]
                status = rng.choices(choices, weights)[0]
                created = now - timedelta(seconds=rng.randrange(span))
                if status in Issue.OPEN_STATUSES and rng.random() < 0.5:
                    created = now - timedelta(days=rng.randrange(1, 40))
                history = HISTORY[status]
                overdue = status in Issue.OPEN_STATUSES and rng.random() < 0.25
                # Routed within the project's county: its subdistrict's office, its contractor.
                issue = {
                    "reference": f"{year}-{seq:06d}",
                    "year": year,
                    "sequence": seq,
                    "project_id": project.pk,
                    "reporter_id": users[i].pk,
                    "category": rng.choice(categories),
                    "title": TITLES[seq % len(TITLES)].format(b=seq % 30 + 1),
                    "description": DESCRIPTIONS[seq % 7 % len(DESCRIPTIONS)].format(
                        b=seq % 30 + 1, u=seq % 4 + 1
                    ),
                    "status": status,
                    "department_id": office_of[i],
                    "contractor_id": project.contractor_id if K.DISPATCHED in history else None,
                    "created_at": created,
                    "sign_for_due_at": created + timedelta(days=1),
                    "is_public": status == Issue.Status.CLOSED and rng.random() < 0.3,
                }
                if ids is not None:
                    issue["id"] = ids[k]
                steps = [
                    created + timedelta(hours=6 * n + rng.randrange(6)) for n in range(len(history))
                ]
                if K.ACCEPTED in history:
                    issue["accepted_at"] = steps[1]
                    # Overdue: the deadline fell between filing and now.
                    issue["rectify_due_at"] = (
                        created + (now - created) / 2 if overdue else steps[1] + timedelta(days=9)
                    )
                if K.RECTIFIED in history:
                    issue["rectified_at"] = steps[3]
                if status in ENDED:
                    issue["closed_at"] = steps[-1]
                if status == Issue.Status.CLOSED:
                    issue["rating"] = rng.choices(RATINGS, [0.8, 0.15, 0.05])[0]
                if status == Issue.Status.SUBMITTED and overdue:
                    issue["sign_for_due_at"] = now - timedelta(hours=3)
                if issue["category"] == Issue.Category.SAFETY and rng.random() < 0.2:
                    issue["urgency"] = Issue.Urgency.URGENT
                # What save() keeps (bulk writes skip it), by the model's own rule.
                issue["due_at"] = Issue.next_deadline.fget(
                    SimpleNamespace(
                        Status=Issue.Status,
                        status=status,
                        sign_for_due_at=issue["sign_for_due_at"],
                        rectify_due_at=issue.get("rectify_due_at"),
                    )
                )
                issues.add(issue)
                plans.append((issue, history, steps))
            with transaction.atomic():
                batch = issues.rows
                issues.write()
                if ids is None:
                    pk_of = dict(
                        Issue.objects.filter(
                            sequence__gt=start, sequence__lte=start + size, year=year
                        ).values_list("sequence", "pk")
                    )
                    for issue in batch:
                        issue["id"] = pk_of[issue["sequence"]]
                for issue, history, steps in plans:
                    previous, pk, reporter = "", issue["id"], issue["reporter_id"]
                    handler = staff[issue["department_id"]]
                    for kind, moment in zip(history, steps, strict=True):
                        to_status = STATUS_AFTER[kind]
                        events.add(
                            issue_id=pk,
                            kind=kind,
                            actor_id=reporter if kind in REPORTER_STEPS else handler,
                            from_status=previous,
                            to_status=to_status,
                            text="" if kind == K.SUBMITTED else "已处理。",
                            created_at=moment,
                        )
                        previous = to_status
                    for n in range(max(0, spec.events_per_issue - len(history))):
                        events.add(
                            issue_id=pk,
                            kind=K.COMMENTED,
                            actor_id=reporter,
                            from_status=issue["status"],
                            to_status=issue["status"],
                            text=f"补充说明 {n + 1}",
                            created_at=steps[-1] + timedelta(hours=n + 1),
                        )
                    if issue["sequence"] % 2 == 0:
                        web, thumb = shared[issue["sequence"] % len(shared)]
                        photos.add(
                            issue_id=pk,
                            kind=Photo.Kind.BEFORE,
                            image=web,
                            thumbnail=thumb,
                            width=1600,
                            height=1200,
                            created_at=issue["created_at"],
                        )
                counts["events"] += events.write()
                counts["photos"] += photos.write()
            counts["issues"] += size
            self.stdout.write(f"  {counts['issues']} / {total} issues", ending="\r")
        IssueCounter.objects.update_or_create(year=year, defaults={"last": total})
        self.stdout.write("")
        return counts
