"""Small helpers that make objects with readable defaults. Tests build their own data."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from supervision import services
from supervision.models import (
    Department,
    Issue,
    Neighbourhood,
    Project,
    Region,
    Subdistrict,
    Supervisor,
)

PASSWORD = "correct-horse-7"


def image_file(
    name: str = "photo.jpg", fmt: str = "JPEG", size=(4, 3), **save_kwargs
) -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, fmt, **save_kwargs)
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def make_county(name: str, code: str) -> Region:
    """Another county-level region under 温州市, beside 瑞安市 (e.g. 平阳县 330326)."""
    wenzhou = Region.objects.ruian().parent
    return Region.objects.create(name=name, code=code, level=Region.Level.COUNTY, parent=wenzhou)


def make_subdistrict(name: str = "安阳街道", code: str = "anyang", region=None) -> Subdistrict:
    return Subdistrict.objects.create(region=region or Region.objects.ruian(), name=name, code=code)


def make_department(
    name: str, kind: str = Department.Kind.SUBDISTRICT_OFFICE, subdistrict=None, region=None
) -> Department:
    """In ``region``, else in its subdistrict's, else in 瑞安市."""
    if region is None:
        region = subdistrict.region if subdistrict is not None else Region.objects.ruian()
    return Department.objects.create(region=region, name=name, kind=kind, subdistrict=subdistrict)


def make_neighbourhood(
    subdistrict: Subdistrict, name: str = "兴业大厦", year_built: int = 1994, **flags
) -> Neighbourhood:
    return Neighbourhood.objects.create(
        subdistrict=subdistrict,
        name=name,
        year_built=year_built,
        buildings=2,
        households=120,
        **flags,
    )


def make_project(
    neighbourhood: Neighbourhood, *, year: int = 2023, contractor=None, **fields
) -> Project:
    fields.setdefault("status", Project.Status.CONSTRUCTION)
    return Project.objects.create(
        name=f"{neighbourhood.name}改造",
        year=year,
        neighbourhood=neighbourhood,
        contractor=contractor,
        **fields,
    )


def make_user(username: str, *, role: str = "", department=None, **fields) -> User:
    if role in User.REGIONAL_ROLES and "region" not in fields:
        fields["region"] = department.region if department else Region.objects.ruian()
    user = User(
        username=username, role=role, department=department, display_name=username, **fields
    )
    user.set_password(PASSWORD)
    user.save()
    return user


def make_supervisor(username: str, neighbourhood: Neighbourhood, projects=(), **fields) -> User:
    user = make_user(username, role=User.Role.SUPERVISOR, region=neighbourhood.subdistrict.region)
    supervisor = Supervisor.objects.create(
        user=user,
        neighbourhood=neighbourhood,
        appointed_on=fields.pop("appointed_on", date(2023, 4, 3)),
        term_ends_on=fields.pop("term_ends_on", date(2099, 4, 2)),
        certificate_number=f"RAJD-{username}",
        **fields,
    )
    supervisor.projects.set(projects)
    return user


@dataclass
class World:
    """Two subdistricts. Alice reports on the 安阳 project; Bob is another supervisor; the 安阳
    office handles it, the 玉海 office must not touch it; contractor staff work for 宏程."""

    anyang: Subdistrict
    yuhai: Subdistrict
    bureau_dept: Department
    office: Department
    other_office: Department
    contractor: Department
    other_contractor: Department
    project: Project
    other_project: Project
    alice: User
    bob: User
    handler: User
    other_staff: User
    builder: User
    bureau: User

    def submit(self, reporter=None, project=None, **fields) -> Issue:
        fields.setdefault("category", Issue.Category.QUALITY)
        fields.setdefault("title", "外墙涂料起皮")
        fields.setdefault("description", "北面外墙涂料起皮，一碰就掉。")
        if services.needs_photo(fields["category"]):
            fields.setdefault("photos", [image_file()])  # the service asks for one
        return services.submit_issue(
            reporter=reporter or self.alice, project=project or self.project, **fields
        )

    def issue_in(self, status: str, **fields) -> Issue:
        """An issue of Alice's brought to ``status`` through the services."""
        issue = self.submit(**fields)
        S = Issue.Status
        if status == S.SUBMITTED:
            return issue
        if status == S.WITHDRAWN:
            return services.withdraw_issue(issue, actor=self.alice, text="已自行解决")
        if status == S.REJECTED:
            return services.reject_issue(issue, actor=self.handler, text="重复反映")
        if status == S.ANSWERED:
            return services.answer_issue(issue, actor=self.handler, text="已纳入方案")
        issue = services.accept_issue(issue, actor=self.handler)
        if status == S.ACCEPTED:
            return issue
        issue = services.dispatch_issue(issue, actor=self.handler, department=self.contractor)
        if status == S.IN_PROGRESS:
            return issue
        issue = services.rectify_issue(
            issue, actor=self.handler, text="已整改", photos=[image_file()]
        )
        if status == S.RECTIFIED:
            return issue
        issue = services.verify_issue(issue, actor=self.alice, rating=Issue.Rating.SATISFIED)
        assert status == S.CLOSED
        return issue


def make_world(region=None, username_prefix: str = "", name_prefix: str = "") -> World:
    """The world in 瑞安市, or in ``region`` (a county-level one) with every username and every
    department, subdistrict and neighbourhood name prefixed: the same shape in another county."""
    u, n = username_prefix, name_prefix
    anyang = make_subdistrict(f"{n}安阳街道", "anyang", region=region)
    yuhai = make_subdistrict(f"{n}玉海街道", "yuhai", region=region)
    bureau_dept = make_department(f"{n}市住建局", Department.Kind.BUREAU, region=region)
    office = make_department(f"{n}安阳街道办事处", subdistrict=anyang)
    other_office = make_department(f"{n}玉海街道办事处", subdistrict=yuhai)
    contractor = make_department(f"{n}宏程建设", Department.Kind.CONTRACTOR, region=region)
    other_contractor = make_department(f"{n}安居建筑", Department.Kind.CONTRACTOR, region=region)
    project = make_project(make_neighbourhood(anyang, f"{n}兴业大厦"), contractor=contractor)
    other_project = make_project(
        make_neighbourhood(yuhai, f"{n}玉海楼小区"), contractor=other_contractor
    )
    alice = make_supervisor(f"{u}alice", project.neighbourhood, [project])
    bob = make_supervisor(f"{u}bob", other_project.neighbourhood, [other_project])
    return World(
        anyang=anyang,
        yuhai=yuhai,
        bureau_dept=bureau_dept,
        office=office,
        other_office=other_office,
        contractor=contractor,
        other_contractor=other_contractor,
        project=project,
        other_project=other_project,
        alice=alice,
        bob=bob,
        handler=make_user(f"{u}anyang", role=User.Role.STAFF, department=office),
        other_staff=make_user(f"{u}yuhai", role=User.Role.STAFF, department=other_office),
        builder=make_user(f"{u}shigong", role=User.Role.STAFF, department=contractor),
        bureau=make_user(f"{u}zhujianju", role=User.Role.BUREAU, department=bureau_dept),
    )


def make_second_world(username_prefix: str = "xh-", name_prefix: str = "西湖") -> World:
    """A world of the same shape in 杭州市西湖区 (another city of 浙江省 than 温州, above 瑞安):
    its own bureau, offices, contractors, projects, supervisors and staff."""
    province = Region.objects.ruian().parent.parent
    city, _ = Region.objects.get_or_create(
        code="330100", defaults={"name": "杭州市", "level": Region.Level.CITY, "parent": province}
    )
    county, _ = Region.objects.get_or_create(
        code="330106", defaults={"name": "西湖区", "level": Region.Level.COUNTY, "parent": city}
    )
    return make_world(county, username_prefix, name_prefix)


def make_second_county() -> dict:
    """A second county under another city (杭州市西湖区), with its own 城关街道 — Ruian's world
    has one of that name too — bureau, office and a supervisor's issues."""
    province = Region.objects.get(code="330000")
    hangzhou = Region.objects.create(
        code="330100", name="杭州市", level=Region.Level.CITY, parent=province
    )
    county = Region.objects.create(
        code="330106", name="西湖区", level=Region.Level.COUNTY, parent=hangzhou
    )
    make_subdistrict("城关街道", "chengguan")  # Ruian's
    chengguan = make_subdistrict("城关街道", "chengguan", region=county)
    bureau_dept = make_department("西湖区住建局", "bureau", region=county)
    office = make_department("城关街道办事处", subdistrict=chengguan)
    project = make_project(make_neighbourhood(chengguan, "西湖新村"))
    supervisor = make_supervisor("xihu01", project.neighbourhood, [project])
    bureau = make_user("xihuju", role=User.Role.BUREAU, department=bureau_dept)
    staff = make_user("xihu-office", role=User.Role.STAFF, department=office)
    issues = [
        services.submit_issue(
            reporter=supervisor,
            project=project,
            category=Issue.Category.SAFETY,
            title=f"西湖新村围挡倒了 {n}",
            description="东门围挡倒在人行道上。",
            photos=[image_file()],
        )
        for n in range(3)
    ]
    services.accept_issue(issues[0], actor=staff)
    return {"county": county, "bureau": bureau, "issues": issues, "office": office}
