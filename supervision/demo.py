"""Demo data: the article's world — Ruian's 2023 batch, its 25 supervisors and their issues.

Reference data comes from ``fixtures/demo.json`` and is matched on natural keys, so loading twice
changes nothing. Issues are filed and worked through the workflow services (a simulated clock
spreads their histories over the last weeks), so every event is one the product would write.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from accounts.models import User

from . import letters, services
from .models import (
    Department,
    Issue,
    Letter,
    Neighbourhood,
    Project,
    ResponseTemplate,
    RoutingRule,
    ScopeItem,
    Subdistrict,
    Supervisor,
    Support,
)

DEMO_FILE = Path(settings.BASE_DIR) / "fixtures" / "demo.json"

SCOPE_CHOICES = [
    ("building", "外立面整治及屋面防水", 120),
    ("building", "楼道粉刷及照明改造", 40),
    ("building", "加装电梯", 200),
    ("roads", "小区道路黑化及标线", 90),
    ("roads", "新增停车位及电动车充电桩", 60),
    ("pipes", "雨污分流改造", 150),
    ("pipes", "强弱电线缆上改下", 80),
    ("pipes", "供水管网更新", 70),
    ("landscape", "绿化补植与口袋公园", 50),
    ("care", "居家养老服务站", 45),
    ("governance", "智慧安防及门禁系统", 35),
    ("governance", "物业用房及党群服务点", 30),
]

# (supervisor no., category, urgency, title, description, location, history)
# history: steps with how many days ago they happened.
ISSUES = [
    (
        1,
        "safety",
        "urgent",
        "脚手架没有挂安全网",
        "东侧脚手架二层以上没有挂安全网，下面就是孩子上学走的路，风一吹有东西往下掉，很危险。",
        "东侧主楼",
        [("submit", 0.1)],
    ),
    (
        1,
        "quality",
        "normal",
        "外墙涂料起皮",
        "北面新刷的外墙涂料已经起皮，用手一碰就掉，怀疑基层没有处理好。",
        "北立面 5–8 层",
        [
            ("submit", 12),
            ("accept", 11.8),
            ("dispatch", 11.5),
            ("rectify", 6),
            ("verify", 5, "satisfied"),
        ],
    ),
    (
        2,
        "civilised",
        "normal",
        "渣土车不盖篷布",
        "早上 7 点左右渣土车进出小区不盖篷布，路面全是泥，灰尘很大，晾的衣服都脏了。",
        "南大门",
        [("submit", 20), ("accept", 19.9), ("rectify", 18, ""), ("verify", 17, "satisfied")],
    ),
    (
        3,
        "civilised",
        "normal",
        "晚上十点后还在切割钢管",
        "昨晚 10 点半还在切割钢管，噪音很大，楼里老人孩子都睡不着。",
        "3 幢北侧加工场",
        [
            ("submit", 9),
            ("accept", 8.9),
            ("dispatch", 8.8),
            ("rectify", 8),
            ("verify", 7, "basically_satisfied"),
        ],
    ),
    (
        4,
        "progress",
        "normal",
        "南门主路挖开两个星期没回填",
        "南门主路挖开已经两个星期了，一直没有回填，老人出门要绕很远，下雨天更难走。",
        "南门主路",
        [("submit", 15), ("accept", 14.5), ("dispatch", 14), ("escalate", 3)],
    ),
    (
        5,
        "opinion",
        "normal",
        "希望多装几个电动车充电桩",
        "居民普遍反映电动车充电难，希望在 5 幢旁边的空地多装几个充电桩，方便大家，也防止飞线充电。",
        "5 幢旁空地",
        [("submit", 25), ("answer", 24), ("verify", 23, "satisfied")],
    ),
    (
        6,
        "quality",
        "normal",
        "新铺沥青路面积水",
        "中心花园旁边新铺的沥青路一下雨就积水，估计坡度不对，排水口位置也偏高。",
        "中心花园东侧道路",
        [("submit", 10), ("accept", 9.5), ("dispatch", 9), ("rectify", 4)],
    ),
    (
        7,
        "safety",
        "urgent",
        "楼道里堆放水泥和钢管",
        "2 幢 1 单元楼道里堆了十几袋水泥和一捆钢管，把消防通道挡住了，晚上看不清容易绊倒。",
        "2 幢 1 单元楼道",
        [("submit", 6), ("accept", 5.95), ("rectify", 5.5), ("verify", 5, "satisfied")],
    ),
    (
        8,
        "other",
        "normal",
        "施工公示牌信息不全",
        "小区门口的施工公示牌没有写施工单位的联系电话，也没有写工期，居民有事不知道找谁。",
        "小区正门",
        [("submit", 30), ("accept", 29.5), ("rectify", 28), ("verify", 27, "satisfied")],
    ),
    (
        9,
        "opinion",
        "normal",
        "外立面颜色能不能征求意见",
        "居民想知道外立面颜色是怎么定的，能不能拿两三个方案出来征求一下大家的意见。",
        "",
        [("submit", 3), ("answer", 2)],
    ),
    (
        10,
        "quality",
        "normal",
        "雨污管道井盖松动",
        "新装的雨污分流井盖踩上去会晃，有响声，晚上车开过去哐哐响。",
        "7 幢与 8 幢之间",
        [("submit", 5), ("accept", 4.8)],
    ),
    (
        11,
        "safety",
        "normal",
        "基坑边没有围挡",
        "化粪池改造的基坑边上只拉了一根绳子，没有硬质围挡，小孩子经常在旁边玩。",
        "1 幢西侧",
        [("submit", 4)],
    ),
    (
        12,
        "progress",
        "normal",
        "加装电梯迟迟没有开工",
        "说好 9 月开工的电梯加装到现在还没动静，腿脚不便的老人都在等，能不能告诉我们具体时间。",
        "6 幢 2 单元",
        [("submit", 18), ("accept", 17), ("answer_later", 0)],
    ),
    (
        13,
        "civilised",
        "normal",
        "工地扬尘没有洒水",
        "这几天风大，工地上的土堆没有覆盖也没有洒水，灰尘一直往楼里飘。",
        "小区西侧空地",
        [
            ("submit", 8),
            ("accept", 7.9),
            ("dispatch", 7.8),
            ("rectify", 7),
            ("reopen", 6.5),
            ("rectify", 3),
        ],
    ),
    (
        14,
        "quality",
        "normal",
        "楼道新换的灯不亮",
        "3 幢楼道刚换的声控灯有一半不亮，晚上上下楼很不方便。",
        "3 幢各单元楼道",
        [("submit", 14), ("accept", 13.9), ("rectify", 12), ("reopen", 11), ("dispatch", 10.9)],
    ),
    (
        15,
        "other",
        "normal",
        "楼下路灯不亮",
        "4 幢楼下的路灯一直不亮。",
        "4 幢楼下",
        [("submit", 2), ("withdraw", 1.8, "物业今天已经修好了，撤回。")],
    ),
    (
        16,
        "quality",
        "normal",
        "外墙涂料起皮（重复反映）",
        "北面外墙涂料起皮。",
        "北立面",
        [
            ("submit", 11),
            (
                "reject",
                10.5,
                "与 1 幢北立面涂料起皮问题重复，已在原问题中一并整改，请关注原问题的进展。",
            ),
        ],
    ),
    (
        17,
        "opinion",
        "normal",
        "希望保留小区里的老桂花树",
        "听说绿化改造要移走中心花园那棵老桂花树，居民都舍不得，希望能保留下来。",
        "中心花园",
        [
            ("submit", 22),
            ("accept", 21.9),
            ("dispatch", 21),
            ("rectify", 19),
            ("verify", 18, "satisfied"),
        ],
    ),
    (
        18,
        "safety",
        "urgent",
        "临时用电线拖在地上",
        "施工临时用电的电线直接拖在地上，下过雨有积水，人从上面走很危险。",
        "9 幢门口",
        [("submit", 1.2), ("accept", 1.15), ("dispatch", 1.1)],
    ),
    (
        19,
        "progress",
        "normal",
        "停车位划线拖了很久",
        "道路黑化已经完成一个月了，停车位还没有划线，车停得乱七八糟。",
        "小区主路",
        [("submit", 16), ("accept", 15.9)],
    ),
    (
        20,
        "civilised",
        "normal",
        "建筑垃圾堆在绿化带",
        "拆下来的旧窗户和砖头堆在绿化带里快一个星期了，没人清运。",
        "12 幢南侧绿化带",
        [
            ("submit", 7),
            ("accept", 6.9),
            ("dispatch", 6.8),
            ("rectify", 5),
            ("verify", 4.5, "unsatisfied"),
        ],
    ),
    (
        21,
        "quality",
        "normal",
        "屋面防水做完还是漏",
        "顶楼住户反映屋面防水刚做完，前天下雨卧室天花板还是渗水。",
        "5 幢 601 室",
        [
            ("submit", 13),
            ("accept", 12.9),
            ("dispatch", 12.5),
            ("rectify", 9),
            ("reopen", 8),
            ("rectify", 2),
        ],
    ),
    (
        22,
        "safety",
        "normal",
        "施工电梯口没有防护门",
        "外墙施工的吊篮停放处没有警示标志，晚上看不见。",
        "8 幢西侧",
        [("submit", 3.5)],
    ),
    (
        23,
        "opinion",
        "normal",
        "希望增加老年人休息座椅",
        "口袋公园改造时能不能多放几张带靠背的座椅，老人走累了可以歇一歇。",
        "口袋公园",
        [("submit", 26), ("answer", 25), ("verify", 24, "basically_satisfied")],
    ),
    (
        24,
        "quality",
        "normal",
        "单元门禁装好就坏",
        "新装的单元门禁刷卡经常没反应，老人进不了门。",
        "2 幢 1 单元",
        [("submit", 5), ("transfer", 4.8, "门禁属于智慧安防项目，由住建局统一协调。")],
    ),
    (
        25,
        "progress",
        "normal",
        "雨污分流工程进度慢",
        "雨污分流这段已经停工十来天了，沟还开着，希望加快进度。",
        "小区东门",
        [("submit", 9), ("accept", 8.9), ("dispatch", 8.5)],
    ),
    (
        2,
        "quality",
        "normal",
        "新砌的花坛开裂",
        "中心花园新砌的花坛才一个月就裂了好几条缝。",
        "中心花园",
        [
            ("submit", 28),
            ("accept", 27.9),
            ("dispatch", 27.5),
            ("rectify", 24),
            ("verify", 23, "satisfied"),
        ],
    ),
    (
        5,
        "civilised",
        "normal",
        "施工人员在楼道抽烟",
        "有施工人员在楼道里抽烟，烟头乱扔，有火灾隐患。",
        "5 幢楼道",
        [
            ("submit", 19),
            ("accept", 18.9),
            ("dispatch", 18.8),
            ("rectify", 18),
            ("verify", 17.5, "satisfied"),
        ],
    ),
    (
        10,
        "safety",
        "normal",
        "窨井盖被移开没有警示",
        "施工时移开的窨井盖晚上没有放回去，也没有警示锥。",
        "7 幢门口",
        [("submit", 2.5), ("accept", 2.4)],
    ),
]


def _image(seed: int, *, after: bool) -> ContentFile:
    """A generated site photo: sky, a building, and clutter that is gone in the after-photo."""
    rng = random.Random(seed)
    image = Image.new("RGB", (1200, 900), (150 + rng.randint(0, 60), 190, 225))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 620, 1200, 900], fill=(120, 120, 115) if not after else (70, 70, 72))
    left = rng.randint(100, 500)
    draw.rectangle(
        [left, 180, left + 520, 640], fill=(215, 205, 185) if not after else (236, 232, 222)
    )
    for row in range(4):
        for col in range(5):
            x, y = left + 30 + col * 100, 210 + row * 105
            draw.rectangle([x, y, x + 60, y + 70], fill=(90, 110, 140))
    if not after:
        for _ in range(12):
            x, y = rng.randint(0, 1150), rng.randint(640, 860)
            draw.rectangle(
                [x, y, x + rng.randint(20, 90), y + rng.randint(10, 40)], fill=(160, 110, 60)
            )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return ContentFile(out.getvalue(), name=f"demo-{seed}.jpg")


@contextmanager
def _clock(moment: datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


RESPONSE_TEMPLATES = [
    (None, "感谢反映", "感谢您的监督和反映，我们已经收到，会尽快核实处理，处理进展会在这里更新。"),
    ("office-anyang", "已派人核实", "已签收，已安排街道城建办工作人员今天到现场核实。"),
    (
        "office-anyang",
        "已督促施工单位",
        "已督促施工单位按规范整改，整改完成后上传整改照片，请监督员验收。",
    ),
    ("office-yuhai", "已派人核实", "已签收，已安排街道城建办工作人员到现场核实。"),
    ("office-jinhu", "已派人核实", "已签收，已安排街道城建办工作人员到现场核实。"),
    ("hongcheng", "已整改", "已按要求整改完成，现场照片见附件，请监督员查看。"),
]


def load(*, now: datetime | None = None) -> dict[str, int]:
    """Load the demo world; returns how many objects of each kind were created."""
    data = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    created: dict[str, int] = {}

    def count(kind: str, was_created: bool) -> None:
        created[kind] = created.get(kind, 0) + int(was_created)

    with transaction.atomic():
        subdistricts = {}
        for row in data["subdistricts"]:
            obj, new = Subdistrict.objects.update_or_create(
                code=row["code"], defaults={"name": row["name"]}
            )
            subdistricts[row["code"]] = obj
            count("subdistricts", new)

        departments = {}
        for row in data["departments"]:
            obj, new = Department.objects.update_or_create(
                name=row["name"],
                defaults={
                    "kind": row["kind"],
                    "phone": row.get("phone", ""),
                    "subdistrict": subdistricts.get(row.get("subdistrict")),
                },
            )
            departments[row["key"]] = obj
            count("departments", new)

        year = data["year"]
        projects = {}
        for index, row in enumerate(data["neighbourhoods"]):
            flags = {
                key: row.get(key, False)
                for key in (
                    "in_shantytown_plan",
                    "expropriation_within_5_years",
                    "incomplete_facilities",
                    "strong_resident_wish",
                )
            }
            hood, new = Neighbourhood.objects.update_or_create(
                subdistrict=subdistricts[row["subdistrict"]],
                name=row["name"],
                defaults={
                    "address": row["address"],
                    "year_built": row["year_built"],
                    "buildings": row["buildings"],
                    "households": row["households"],
                    **flags,
                },
            )
            count("neighbourhoods", new)
            spec = row["project"]
            project, new = Project.objects.update_or_create(
                neighbourhood=hood,
                year=year,
                defaults={
                    "name": f"{hood.name}老旧小区改造工程",
                    "status": spec["status"],
                    "contractor": departments[spec["contractor"]],
                    "to_complete_this_year": spec["to_complete_this_year"],
                    **_project_dates(year, spec["status"], index),
                },
            )
            count("projects", new)
            projects[hood.name] = project
            project.departments.set(
                [
                    departments["bureau"],
                    departments[f"office-{row['subdistrict']}"],
                    departments["zhengcheng"],
                    departments["water"],
                    departments["power"],
                ]
            )
            if new:
                _scope(project, index)

        for key, title, text in RESPONSE_TEMPLATES:
            _, new = ResponseTemplate.objects.get_or_create(
                department=departments[key] if key else None,
                title=title,
                defaults={"text": text},
            )
            count("response_templates", new)
        # 上望 has no project in this batch yet: its issues would go straight to the bureau.
        _, new = RoutingRule.objects.get_or_create(
            subdistrict=subdistricts["shangwang"],
            category="",
            defaults={
                "department": departments["bureau"],
                "note": "上望街道暂未配备监督联络员，由住建局直接办理",
            },
        )
        count("routing_rules", new)

        # One hash for every demo account: hashing 31 times would take most of the load time.
        password = make_password(data["password"])
        for row in data["staff"]:
            _user(
                row["username"],
                row["name"],
                row["mobile"],
                password,
                role=row["role"],
                department=departments[row["department"]],
                count=count,
            )
        admin, new = User.objects.get_or_create(
            username="admin",
            defaults={
                "is_staff": True,
                "is_superuser": True,
                "display_name": "系统管理员",
                "role": User.Role.BUREAU,
            },
        )
        if new:
            admin.password = password
            admin.save(update_fields=["password"])
        count("users", new)

        supervisors = {}
        subdistrict_of = {row["name"]: row["subdistrict"] for row in data["neighbourhoods"]}
        for number, row in enumerate(data["supervisors"], start=1):
            user = _user(
                row["username"],
                row["name"],
                row["mobile"],
                password,
                role=User.Role.SUPERVISOR,
                department=None,
                count=count,
            )
            home = projects[row["home"]]
            supervisor, new = Supervisor.objects.update_or_create(
                user=user,
                defaults={
                    "neighbourhood": home.neighbourhood,
                    "appointed_on": date.fromisoformat(data["appointed_on"]),
                    "term_ends_on": date.fromisoformat(data["term_ends_on"]),
                    "certificate_number": row["certificate"],
                },
            )
            count("supervisors", new)
            # Each watches the project of their own neighbourhood and a neighbour's in the same subdistrict.
            same = [
                p
                for name, p in projects.items()
                if subdistrict_of[name] == subdistrict_of[row["home"]]
            ]
            neighbour = same[(same.index(home) + 1) % len(same)]
            supervisor.projects.set([home, neighbour])
            supervisors[number] = supervisor

        demo_reporters = [s.user_id for s in supervisors.values()]
        if not Issue.objects.filter(reporter_id__in=demo_reporters).exists():
            created["issues"] = _issues(supervisors, departments, now or timezone.now())
        else:
            created["issues"] = 0
        created["supports"] = _supports(now or timezone.now())
    # Outside the block above: each letter commits before it is triaged, as on the site, so that
    # its photos are in storage when a supervisor files it as an issue.
    created["letters"] = _letters(projects, now or timezone.now())
    return created


def _user(username, name, mobile, password, *, role, department, count) -> User:
    user, new = User.objects.get_or_create(
        username=username,
        defaults={"display_name": name, "mobile": mobile, "role": role, "department": department},
    )
    if new:
        user.password = password
        user.save(update_fields=["password"])
    count("users", new)
    return user


def _project_dates(year: int, status: str, index: int) -> dict:
    start = date(year, 4, 10) + timedelta(days=7 * (index % 10))
    end = start + timedelta(days=180)
    consultation = start - timedelta(days=75)
    design = start - timedelta(days=30)
    acceptance = end + timedelta(days=30)
    dates = {
        "consultation_planned": consultation,
        "consultation_actual": None,
        "design_planned": design,
        "design_actual": None,
        "planned_start": start,
        "planned_end": end,
        "actual_start": None,
        "actual_end": None,
        "acceptance_planned": acceptance,
        "acceptance_actual": None,
    }
    if status != "planning":
        dates["consultation_actual"] = consultation + timedelta(days=index % 4)
    if status in ("construction", "completed", "accepted"):
        dates["design_actual"] = design + timedelta(days=index % 6)
        dates["actual_start"] = start + timedelta(days=index % 5)
    if status in ("completed", "accepted"):
        dates["actual_end"] = end - timedelta(days=index % 9)
    if status == "accepted":
        dates["acceptance_actual"] = acceptance - timedelta(days=index % 7)
    return dates


def _scope(project: Project, index: int) -> None:
    if project.status == Project.Status.PLANNING:
        return
    rng = random.Random(index)
    chosen = sorted(rng.sample(range(len(SCOPE_CHOICES)), rng.randint(4, 6)))
    for position in chosen:
        area, description, budget = SCOPE_CHOICES[position]
        if project.status in (Project.Status.COMPLETED, Project.Status.ACCEPTED):
            progress = 100
        elif project.status == Project.Status.CONSTRUCTION:
            progress = rng.choice([15, 30, 45, 60, 75, 90, 100])
        else:
            progress = 0
        ScopeItem.objects.create(
            project=project, area=area, description=description, budget=budget, progress=progress
        )


def _issues(
    supervisors: dict[int, Supervisor], departments: dict[str, Department], now: datetime
) -> int:
    handlers = {
        office.subdistrict_id: office.members.filter(role=User.Role.STAFF).first()
        for office in Department.objects.filter(kind=Department.Kind.SUBDISTRICT_OFFICE)
    }
    bureau_user = User.objects.filter(role=User.Role.BUREAU, is_superuser=False).first()
    contractor_staff = {
        d.pk: d.members.first() for d in Department.objects.filter(kind=Department.Kind.CONTRACTOR)
    }
    made = 0
    for seed, (number, category, urgency, title, description, location, history) in enumerate(
        ISSUES, start=1
    ):
        supervisor = supervisors[number]
        reporter = supervisor.user
        watched = supervisor.projects.order_by("pk")
        project = (
            watched.exclude(status__in=[Project.Status.PLANNING, Project.Status.CONSULTING]).first()
            or watched.first()
        )
        issue = None
        for step in history:
            name, days_ago, *extra = step
            if name == "answer_later":
                continue
            moment = now - timedelta(days=days_ago)
            with _clock(moment):
                handler = handlers.get(project.neighbourhood.subdistrict_id) or bureau_user
                if issue is not None and issue.department_id == departments["bureau"].pk:
                    handler = bureau_user
                if name == "submit":
                    issue = services.submit_issue(
                        reporter=reporter,
                        project=project,
                        category=category,
                        urgency=urgency,
                        title=title,
                        description=description,
                        location=location,
                        **_opinion_fields(category, location, seed, title + description),
                        photos=[_image(seed * 10 + k, after=False) for k in range(1 + seed % 2)],
                    )
                elif name == "accept":
                    issue = services.accept_issue(
                        issue, actor=handler, text="已签收，马上安排人员到现场核实。"
                    )
                elif name == "dispatch":
                    issue = services.dispatch_issue(
                        issue,
                        actor=handler,
                        department=project.contractor,
                        text="请施工单位按期整改，整改后上传照片。",
                    )
                elif name == "rectify":
                    actor = contractor_staff.get(issue.contractor_id) or handler
                    issue = services.rectify_issue(
                        issue,
                        actor=actor,
                        text="已按要求整改完毕，请监督员查看。",
                        photos=[_image(seed * 10 + 7, after=True)],
                    )
                elif name == "verify":
                    issue = services.verify_issue(
                        issue,
                        actor=reporter,
                        rating=extra[0] or "satisfied",
                        text=(
                            "去现场看了，还有不少碎砖没清走，请再清理一次。"
                            if extra[0] == "unsatisfied"
                            else "现场看过了，谢谢。"
                        ),
                    )
                elif name == "answer":
                    issue = services.answer_issue(
                        issue,
                        actor=handler,
                        text="这件事已经纳入改造方案，具体安排会在小区公示栏和监督群里同步，欢迎继续提意见。",
                    )
                elif name == "reopen":
                    issue = services.reopen_issue(
                        issue, actor=reporter, text="去现场看了，问题还在，请再处理。"
                    )
                elif name == "reject":
                    issue = services.reject_issue(issue, actor=handler, text=extra[0])
                elif name == "withdraw":
                    issue = services.withdraw_issue(issue, actor=reporter, text=extra[0])
                elif name == "transfer":
                    issue = services.transfer_issue(
                        issue, actor=handler, department=departments["bureau"], text=extra[0]
                    )
                elif name == "escalate":
                    issue = services.escalate_issue(
                        issue,
                        actor=bureau_user,
                        text="请街道和施工单位三天内回填恢复通行，并报告进度。",
                    )
                else:  # pragma: no cover - a typo in the script above
                    raise ValueError(name)
        if issue.status == Issue.Status.CLOSED or seed % 3 == 0:
            services.publish_issue(issue, actor=bureau_user)
        made += 1
    return made


def _supports(now: datetime) -> int:
    """附议: on every other open issue, one to three of the project's other supervisors say "me
    too" a few hours after it was filed. Once: nothing is added when supporters exist."""
    if Support.objects.filter(supporter__isnull=False).exists():
        return 0
    made = 0
    issues = Issue.objects.filter(status__in=Issue.OPEN_STATUSES).order_by("created_at", "pk")
    for number, issue in enumerate(issues):
        if number % 2:
            continue
        others = (
            Supervisor.objects.filter(projects=issue.project_id)
            .exclude(user=issue.reporter_id)
            .select_related("user")
            .order_by("pk")
        )
        for k, supervisor in enumerate(others[: 1 + number % 3]):
            with _clock(min(issue.created_at + timedelta(hours=2 + 3 * k), now)):
                services.support_issue(issue, actor=supervisor.user)
            made += 1
    return made


def _opinion_fields(category: str, location: str, seed: int, text: str = "") -> dict:
    """A residents' opinion names its building and how many households stand behind it."""
    if category != "opinion":
        return {}
    match = re.search(r"(\d+)\s*幢", location)
    keywords = [
        ("roads", ("充电", "停车", "道路")),
        ("building", ("外立面", "颜色", "屋面", "楼道", "电梯")),
        ("landscape", ("绿化", "花坛")),
        ("care", ("老人", "养老", "托育")),
    ]
    area = next(
        (area for area, words in keywords if any(word in location + text for word in words)),
        "governance",
    )
    return {
        "building": f"{match.group(1)} 幢" if match else "全小区",
        "households": 6 + seed % 30,
        "area": area,
    }


# Residents' letters (居民来信) on two projects, one of each subdistrict office:
# (project, days ago, summary, details, building, unit, mobile, photos, what became of it).
LETTERS = [
    (
        "兴业大厦",
        9,
        "3 幢门口的施工围挡倒了",
        "昨晚刮大风，围挡倒在人行道上，老人和小孩只能绕到车道上走。",
        "3 幢",
        "1 单元",
        "13967700101",
        1,
        "filed-closed",
    ),
    (
        "兴业大厦",
        6,
        "楼道里的建筑垃圾一直没清",
        "2 单元楼道堆了一周的碎砖和水泥袋，晚上看不清容易绊倒。",
        "2 幢",
        "2 单元",
        "",
        1,
        "filed",
    ),
    (
        "兴业大厦",
        5,
        "2 幢楼道的垃圾还在，我们也反映过",
        "跟前面说的是同一件事，楼道还是没人清理。",
        "2 幢",
        "2 单元",
        "13967700102",
        0,
        "supported",
    ),
    (
        "兴业大厦",
        4,
        "外墙涂料是什么颜色？",
        "想问一下外墙最后刷成什么颜色，能不能让居民一起商量。",
        "",
        "",
        "13967700103",
        0,
        "answered",
    ),
    ("兴业大厦", 3, "希望小区门口多装一个快递柜", "", "", "", "", 0, "declined"),
    (
        "兴业大厦",
        0,
        "早上 6 点就开始打钻，太吵了",
        "这几天每天早上 6 点就开始打钻，老人孩子都睡不好，能不能 8 点以后再施工？",
        "5 幢",
        "",
        "13967700104",
        0,
        "new",
    ),
    (
        "解放路公寓",
        12,
        "下水管道改造后厨房返臭",
        "1 幢 3 单元好几户厨房下水返臭，改造前没有这个问题。",
        "1 幢",
        "3 单元",
        "13967700105",
        1,
        "late",
    ),
    (
        "解放路公寓",
        1,
        "绿化带里的树被挖掉了",
        "小区东侧绿化带的两棵桂花树被挖走了，是不是改造方案里的？",
        "",
        "",
        "",
        1,
        "new",
    ),
]


def _letters(projects: dict[str, Project], now: datetime) -> int:
    """Letters in every state: waiting, past their limit (reminded and escalated to the office),
    answered, declined, filed as issues (one followed to 已办结 and made public), added as support."""
    chosen = {name: projects[name] for name in {row[0] for row in LETTERS} if name in projects}
    if len(chosen) < 2 or Letter.objects.filter(project__in=chosen.values()).exists():
        return 0
    bureau_user = User.objects.filter(role=User.Role.BUREAU, is_superuser=False).first()
    made = 0
    filed_open = None
    for seed, row in enumerate(LETTERS, start=100):
        name, days_ago, summary, details, building, unit, mobile, photos, outcome = row
        project = chosen[name]
        carrier = (
            User.objects.filter(supervisor__projects=project, supervisor__is_active=True)
            .order_by("username")
            .first()
        )
        office = project.departments.filter(kind=Department.Kind.SUBDISTRICT_OFFICE).first()
        handler = office.members.filter(role=User.Role.STAFF).first() if office else bureau_user
        sent_at = now - timedelta(days=days_ago, hours=2)
        with _clock(sent_at):
            letter = letters.send_letter(
                project=project,
                summary=summary,
                details=details,
                building=building,
                unit=unit,
                mobile=mobile,
                photos=[_image(seed * 10 + k, after=False) for k in range(photos)],
                sender_address=f"demo-{seed}",
            )
        made += 1
        if outcome in ("new", "late"):
            continue
        with _clock(sent_at + timedelta(hours=5)):
            if outcome == "answered":
                letters.answer_letter(
                    letter,
                    actor=carrier,
                    text="已问过施工方：外墙颜色有三个方案，下周在小区公示栏和意愿征询里请大家投票。",
                )
            elif outcome == "declined":
                letters.decline_letter(
                    letter,
                    actor=carrier,
                    reason="快递柜不在这次改造的内容里，已转告社区，由社区和物业商量。",
                )
            elif outcome == "supported" and filed_open is not None:
                if hasattr(services, "support_issue"):
                    letters.add_letter_as_support(letter, actor=carrier, issue=filed_open)
                else:  # 附议 not there yet: the same words become an answer
                    letters.answer_letter(letter, actor=carrier, text="这件事已经转为问题在办。")
            elif outcome in ("filed", "filed-closed"):
                category = "safety" if outcome == "filed-closed" else "civilised"
                # The letter's photos come along; the supervisor adds one taken on site (which
                # is all the issue gets when the whole demo loads in one transaction, as in
                # the tests: the letter's files are written only when that commits).
                issue = letters.file_letter_as_issue(
                    letter,
                    actor=carrier,
                    category=category,
                    photos=[_image(seed * 10 + 5, after=False)],
                )
                filed_open = issue if outcome == "filed" else filed_open
        if outcome == "filed-closed":
            with _clock(sent_at + timedelta(days=1)):
                issue = services.accept_issue(issue, actor=handler, text="已签收，马上到现场。")
            with _clock(sent_at + timedelta(days=2)):
                issue = services.rectify_issue(
                    issue,
                    actor=handler,
                    text="围挡已扶正并加装斜撑，请监督员查看。",
                    photos=[_image(seed * 10 + 7, after=True)],
                )
            with _clock(sent_at + timedelta(days=3)):
                issue = services.verify_issue(
                    issue, actor=carrier, rating="satisfied", text="现场看过了，围挡很牢固。"
                )
                services.publish_issue(issue, actor=bureau_user)
    letters.sweep_letters(now=now)  # the late one: reminded, then escalated to the office
    return made
