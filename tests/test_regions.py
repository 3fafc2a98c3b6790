"""Administrative regions (issue 23 §1): 省 → 市 → 县（市、区）. Subdistricts and departments hang
under a county-level region and their names are unique within it, so that the 城关街道 of every
county can exist; migration 0025 put everything the product had under 瑞安市."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from supervision.models import Department, Project, Region, Subdistrict

from .factories import make_county, make_department, make_subdistrict

BEFORE = [("supervision", "0024_photo_states")]
REGIONS = [("supervision", "0025_regions")]


# --- the migration -----------------------------------------------------------------------------


def migrate(targets):
    """Move the test database to ``targets``; returns the models of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # what is applied now
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def at_0024(transactional_db):
    """The database as it was before regions; back to the latest state afterwards."""
    try:
        yield migrate(BEFORE)
    finally:
        migrate_to_latest()


def old_world(apps) -> dict:
    """What a database of migration 0024 holds: Ruian's subdistricts, departments (one with a
    history row), a neighbourhood and its project."""
    Subdistrict = apps.get_model("supervision", "Subdistrict")
    Department = apps.get_model("supervision", "Department")
    HistoricalDepartment = apps.get_model("supervision", "HistoricalDepartment")
    Neighbourhood = apps.get_model("supervision", "Neighbourhood")
    Project = apps.get_model("supervision", "Project")
    anyang = Subdistrict.objects.create(name="安阳街道", code="anyang")
    yuhai = Subdistrict.objects.create(name="玉海街道", code="yuhai")
    bureau = Department.objects.create(name="瑞安市住房和城乡建设局", kind="bureau")
    office = Department.objects.create(
        name="安阳街道办事处", kind="subdistrict_office", subdistrict=anyang
    )
    builder = Department.objects.create(name="瑞安市宏程建设有限公司", kind="contractor")
    HistoricalDepartment.objects.create(
        id=bureau.pk,
        name=bureau.name,
        kind="bureau",
        created_at=bureau.created_at,
        history_date=timezone.now(),
        history_type="+",
    )
    hood = Neighbourhood.objects.create(subdistrict=yuhai, name="玉海楼小区", year_built=1990)
    project = Project.objects.create(name="玉海楼小区改造", year=2023, neighbourhood=hood)
    project.departments.set([bureau, office])
    project.contractor = builder
    project.save()
    return {
        "subdistricts": {s.pk: s.name for s in (anyang, yuhai)},
        "departments": {d.pk: d.name for d in (bureau, office, builder)},
        "project": project.pk,
    }


def test_the_migration_puts_every_subdistrict_and_department_under_ruian(at_0024):
    before = old_world(at_0024)

    apps = migrate(REGIONS)

    Region = apps.get_model("supervision", "Region")
    ruian = Region.objects.get(code="330381")
    chain = [(ruian.level, ruian.name)]
    chain += [(ruian.parent.level, ruian.parent.name)]
    chain += [(ruian.parent.parent.level, ruian.parent.parent.name)]
    assert chain == [("county", "瑞安市"), ("city", "温州市"), ("province", "浙江省")]
    assert (ruian.parent.code, ruian.parent.parent.code, ruian.parent.parent.parent) == (
        "330300",
        "330000",
        None,
    )
    assert Region.objects.count() == 3
    # Nothing lost, nothing renamed, everything under 瑞安市.
    subdistricts = apps.get_model("supervision", "Subdistrict").objects.all()
    departments = apps.get_model("supervision", "Department").objects.all()
    assert dict(subdistricts.values_list("pk", "name")) == before["subdistricts"]
    assert dict(departments.values_list("pk", "name")) == before["departments"]
    assert set(subdistricts.values_list("region", flat=True)) == {ruian.pk}
    assert set(departments.values_list("region", flat=True)) == {ruian.pk}
    history = apps.get_model("supervision", "HistoricalDepartment").objects.get()
    assert history.region_id == ruian.pk
    # What pointed at them still does.
    project = apps.get_model("supervision", "Project").objects.get(pk=before["project"])
    assert project.neighbourhood.subdistrict.name == "玉海街道"
    assert project.contractor.name == "瑞安市宏程建设有限公司"
    assert set(project.departments.values_list("name", flat=True)) == {
        "瑞安市住房和城乡建设局",
        "安阳街道办事处",
    }
    office = departments.get(name="安阳街道办事处")
    assert office.subdistrict.region_id == office.region_id

    # And back: the regions go, the subdistricts and departments stay.
    apps = migrate(BEFORE)
    assert "supervision_region" not in connection.introspection.table_names()
    subdistricts = apps.get_model("supervision", "Subdistrict").objects.all()
    departments = apps.get_model("supervision", "Department").objects.all()
    assert dict(subdistricts.values_list("pk", "name")) == before["subdistricts"]
    assert dict(departments.values_list("pk", "name")) == before["departments"]


def test_going_back_is_refused_while_two_counties_share_a_subdistrict_name(transactional_db):
    pingyang = make_county("平阳县", "330326")
    make_subdistrict("城关街道", "chengguan")
    make_subdistrict("城关街道", "chengguan", region=pingyang)
    try:
        with pytest.raises(RuntimeError, match="Subdistrict.name=城关街道"):
            migrate(BEFORE)
        assert Subdistrict.objects.filter(name="城关街道").count() == 2
    finally:
        migrate_to_latest()


# --- names unique within a region --------------------------------------------------------------


@pytest.fixture
def pingyang(db) -> Region:
    return make_county("平阳县", "330326")


def test_two_counties_may_each_have_a_chengguan_subdistrict(pingyang):
    ruian = Region.objects.ruian()
    make_subdistrict("城关街道", "chengguan", region=ruian)
    make_subdistrict("城关街道", "chengguan", region=pingyang)

    assert Subdistrict.objects.filter(name="城关街道", code="chengguan").count() == 2


def test_one_county_cannot_have_two_subdistricts_of_one_name(pingyang):
    make_subdistrict("城关街道", "chengguan", region=pingyang)

    with pytest.raises(ValidationError, match="名称"):
        Subdistrict(region=pingyang, name="城关街道", code="chengguan2").full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        make_subdistrict("城关街道", "chengguan2", region=pingyang)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_subdistrict("城东街道", "chengguan", region=pingyang)  # the slug too
    assert Subdistrict.objects.filter(region=pingyang).count() == 1


def test_two_counties_may_each_have_a_department_of_one_name(pingyang):
    ruian = Region.objects.ruian()
    make_department("城关街道办事处", subdistrict=make_subdistrict("城关街道", "chengguan"))
    make_department(
        "城关街道办事处",
        subdistrict=make_subdistrict("城关街道", "chengguan", region=pingyang),
    )
    make_department("住房和城乡建设局", Department.Kind.BUREAU, region=ruian)
    make_department("住房和城乡建设局", Department.Kind.BUREAU, region=pingyang)

    offices = Department.objects.filter(name="城关街道办事处")
    assert sorted(offices.values_list("region__name", flat=True)) == ["平阳县", "瑞安市"]
    assert Department.objects.filter(name="住房和城乡建设局").count() == 2


def test_one_county_cannot_have_two_departments_of_one_name(pingyang):
    make_department("住房和城乡建设局", Department.Kind.BUREAU, region=pingyang)

    duplicate = Department(region=pingyang, name="住房和城乡建设局", kind=Department.Kind.BUREAU)
    with pytest.raises(ValidationError, match="名称"):
        duplicate.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        make_department("住房和城乡建设局", Department.Kind.CONTRACTOR, region=pingyang)
    assert Department.objects.filter(region=pingyang).count() == 1


def test_an_office_serves_the_county_of_its_subdistrict(pingyang):
    chengguan = make_subdistrict("城关街道", "chengguan", region=pingyang)
    office = Department(
        region=Region.objects.ruian(),
        name="城关街道办事处",
        kind=Department.Kind.SUBDISTRICT_OFFICE,
        subdistrict=chengguan,
    )

    with pytest.raises(ValidationError) as refused:
        office.full_clean()
    assert "subdistrict" in refused.value.message_dict


def test_subdistricts_and_departments_hang_under_a_county_level_region(db):
    wenzhou = Region.objects.ruian().parent
    with pytest.raises(ValidationError) as refused:
        Subdistrict(region=wenzhou, name="城关街道", code="chengguan").full_clean()
    assert "region" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        Department(region=wenzhou, name="温州市住建局", kind=Department.Kind.BUREAU).full_clean()
    assert "region" in refused.value.message_dict


def test_the_statistics_code_has_twelve_digits_and_is_optional(db):
    ruian = Region.objects.ruian()
    Subdistrict(region=ruian, name="安阳街道", code="anyang").full_clean()
    Subdistrict(
        region=ruian, name="安阳街道", code="anyang", stats_code="330381001000"
    ).full_clean()
    for wrong in ("33038100100", "3303810010001", "33038100100x"):
        with pytest.raises(ValidationError) as refused:
            Subdistrict(region=ruian, name="安阳街道", code="anyang", stats_code=wrong).full_clean()
        assert "stats_code" in refused.value.message_dict


# --- the tree ----------------------------------------------------------------------------------


def test_ruian_sits_under_wenzhou_under_zhejiang(db):
    ruian = Region.objects.ruian()
    assert Region.objects.ruian() == ruian
    assert Region.objects.count() == 3  # made once

    assert [(r.code, r.level) for r in ruian.ancestors()] == [
        ("330000", Region.Level.PROVINCE),
        ("330300", Region.Level.CITY),
    ]
    assert ruian.full_name() == "浙江省温州市瑞安市"
    assert ruian.parent.parent.ancestors() == []
    loaded = Region.objects.select_related("parent__parent").get(pk=ruian.pk)
    with CaptureQueriesContext(connection) as queries:
        assert [r.name for r in loaded.ancestors()] == ["浙江省", "温州市"]
    assert len(queries) == 0


def test_names_are_unique_within_the_parent_and_codes_everywhere(pingyang):
    wenzhou = pingyang.parent
    taizhou = Region.objects.create(
        name="台州市", code="331000", level=Region.Level.CITY, parent=wenzhou.parent
    )
    Region.objects.create(name="城关镇", code="331099", level=Region.Level.COUNTY, parent=taizhou)
    Region.objects.create(name="城关镇", code="330399", level=Region.Level.COUNTY, parent=wenzhou)
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(name="平阳县", code="330398", level="county", parent=wenzhou)
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(name="苍南县", code="330326", level="county", parent=wenzhou)
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(name="浙江省", code="339900", level="province")
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(name="温州市区", code="330301", level="county")  # no parent


def test_a_region_sits_under_the_level_above_with_its_code(pingyang):
    zhejiang = pingyang.parent.parent
    wrong = [
        Region(name="苍南县", code="330327", level="county", parent=zhejiang),  # not a city
        Region(name="丽水市", code="331100", level="city", parent=pingyang),
        Region(name="江苏省", code="320000", level="province", parent=zhejiang),
        Region(name="苍南县", code="330427", level="county", parent=pingyang.parent),  # code
        Region(name="苍南县", code="33032", level="county", parent=pingyang.parent),
    ]
    for region in wrong:
        with pytest.raises(ValidationError):
            region.full_clean()
    Region(name="苍南县", code="330327", level="county", parent=pingyang.parent).full_clean()


# --- the admin and the panel -------------------------------------------------------------------


def test_the_admin_lists_searches_and_filters_regions(db, client):
    from accounts.models import User

    pingyang = make_county("平阳县", "330326")
    make_subdistrict("城关街道", "chengguan", region=pingyang)
    client.force_login(User.objects.create_superuser("root", "root@example.cn", "root-pass-1"))

    page = client.get("/admin/supervision/region/", {"q": "330326"}).content.decode()
    assert "平阳县" in page and "瑞安市" not in page
    response = client.get("/admin/supervision/region/", {"parent__id__exact": pingyang.parent_id})
    assert response.status_code == 200
    assert {r.name for r in response.context["cl"].result_list} == {"瑞安市", "平阳县"}
    page = client.get("/admin/supervision/subdistrict/").content.decode()
    assert "平阳县" in page and "县（市、区）" in page
    assert client.get("/admin/supervision/department/").status_code == 200
    assert client.get(f"/admin/supervision/region/{pingyang.pk}/change/").status_code == 200


def test_the_bureau_adds_a_department_where_it_serves(world, client):
    client.force_login(world.bureau)
    form = client.get("/panel/supervision/department/add/")
    assert form.status_code == 200
    assert form.context["adminform"].form.initial["region"] == world.bureau_dept.region_id

    response = client.post(
        "/panel/supervision/department/add/",
        {
            "region": world.bureau_dept.region_id,
            "name": "瑞安市供电公司",
            "kind": Department.Kind.UTILITY,
            "phone": "",
            "webhook_url": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Department.objects.get(name="瑞安市供电公司").region.code == "330381"


# --- backups -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_into_a_database_whose_regions_have_other_ids(world, tmp_path):
    backup = tmp_path / "backup.zip"
    call_command("export_data", str(backup), stdout=io.StringIO())
    names = sorted(Subdistrict.objects.values_list("region__code", "name"))
    ruian_before = Region.objects.ruian().pk
    call_command("flush", interactive=False, verbosity=0)
    # A freshly migrated database: the migration's 浙江省 → 温州市 → 瑞安市, here with other ids.
    for code in ("320000", "340000", "350000", "360000"):
        Region.objects.create(name=code, code=code, level="province").delete()
    assert Region.objects.ruian().pk != ruian_before

    call_command("import_data", str(backup), stdout=io.StringIO())

    assert sorted(Subdistrict.objects.values_list("region__code", "name")) == names
    assert Project.objects.count() == 2
    assert Region.objects.filter(code="330381").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_backup_made_before_regions_restores_under_ruian(world, tmp_path):
    backup = tmp_path / "backup.zip"
    call_command("export_data", str(backup), stdout=io.StringIO())
    # As export_data wrote it before migration 0025: no regions, nothing placed in one.
    with zipfile.ZipFile(backup) as archive:
        objects = json.loads(archive.read("data.json"))
    old = []
    for obj in objects:
        if obj["model"] == "supervision.region":
            continue
        obj["fields"].pop("region", None)
        obj["fields"].pop("stats_code", None)
        if obj["model"] == "accounts.user":
            obj["fields"].pop("region", None)
        old.append(obj)
    old_backup = tmp_path / "old.zip"
    with zipfile.ZipFile(old_backup, "w") as archive:
        archive.writestr("data.json", json.dumps(old, ensure_ascii=False))
    subdistricts = sorted(Subdistrict.objects.values_list("name", flat=True))
    departments = sorted(Department.objects.values_list("name", flat=True))
    call_command("flush", interactive=False, verbosity=0)
    Region.objects.ruian()  # as migrate leaves it

    call_command("import_data", str(old_backup), stdout=io.StringIO())

    assert sorted(Subdistrict.objects.values_list("name", flat=True)) == subdistricts
    assert sorted(Department.objects.values_list("name", flat=True)) == departments
    assert set(Subdistrict.objects.values_list("region__code", flat=True)) == {"330381"}
    assert set(Department.objects.values_list("region__code", flat=True)) == {"330381"}
    assert Region.objects.count() == 3


USERS_BEFORE = [("accounts", "0002_initial"), ("supervision", "0025_regions")]
USERS_AFTER = [("accounts", "0003_regions")]


@pytest.fixture
def before_user_regions(transactional_db):
    """Regions exist, people do not belong to one yet (accounts 0002); latest afterwards."""
    try:
        yield migrate(USERS_BEFORE)
    finally:
        migrate_to_latest()


def test_the_migration_puts_every_supervisor_and_coordinator_in_a_county(before_user_regions):
    apps = before_user_regions
    Region = apps.get_model("supervision", "Region")
    User = apps.get_model("accounts", "User")
    Subdistrict = apps.get_model("supervision", "Subdistrict")
    Department = apps.get_model("supervision", "Department")
    Neighbourhood = apps.get_model("supervision", "Neighbourhood")
    Supervisor = apps.get_model("supervision", "Supervisor")
    zhejiang, _ = Region.objects.get_or_create(
        code="330000", defaults={"name": "浙江省", "level": "province"}
    )
    wenzhou, _ = Region.objects.get_or_create(
        code="330300", defaults={"name": "温州市", "level": "city", "parent": zhejiang}
    )
    ruian, _ = Region.objects.get_or_create(
        code="330381", defaults={"name": "瑞安市", "level": "county", "parent": wenzhou}
    )
    pingyang = Region.objects.create(code="330326", name="平阳县", level="county", parent=wenzhou)
    chengguan = Subdistrict.objects.create(region=pingyang, name="城关街道", code="chengguan")
    bureau = Department.objects.create(region=pingyang, name="平阳县住建局", kind="bureau")
    hood = Neighbourhood.objects.create(subdistrict=chengguan, name="城关新村", year_built=1990)
    User.objects.create(username="pyju", role="bureau", department=bureau)
    resident = User.objects.create(username="pyjd", role="supervisor")
    Supervisor.objects.create(
        user=resident,
        neighbourhood=hood,
        appointed_on=date(2023, 4, 3),
        term_ends_on=date(2026, 4, 2),
        certificate_number="PY-1",
    )
    User.objects.create(username="old-bureau", role="bureau")
    User.objects.create(username="office", role="")

    apps = migrate(USERS_AFTER)

    regions = dict(apps.get_model("accounts", "User").objects.values_list("username", "region"))
    assert regions["pyju"] == pingyang.pk  # its department's county
    assert regions["pyjd"] == pingyang.pk  # its neighbourhood's county
    assert regions["old-bureau"] == ruian.pk  # the one programme there was
    assert regions["office"] is None  # no regional role: no region
