# Administrative regions (issue 23 §1): 浙江省 → 温州市 → 瑞安市, every subdistrict and department
# placed under 瑞安市, and names unique within a region instead of everywhere.

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# (code, name, level, parent code): the chain the product served until now. Kept here, not
# imported from the models, so that this migration stays what it was when the models change.
RUIAN = [
    ("330000", "浙江省", "province", None),
    ("330300", "温州市", "city", "330000"),
    ("330381", "瑞安市", "county", "330300"),
]
COUNTY = "330381"


def place_under_ruian(apps, schema_editor):
    """Make the chain (or find it) and put every subdistrict and department, and the history
    rows of departments, under 瑞安市: before regions existed the product served Ruian only."""
    db = schema_editor.connection.alias
    Region = apps.get_model("supervision", "Region")
    regions = {}
    for code, name, level, parent in RUIAN:
        regions[code], _created = Region.objects.using(db).get_or_create(
            code=code, defaults={"name": name, "level": level, "parent": regions.get(parent)}
        )
    for model in ("Subdistrict", "Department", "HistoricalDepartment"):
        rows = apps.get_model("supervision", model).objects.using(db)
        rows.filter(region__isnull=True).update(region=regions[COUNTY])
    # (On PostgreSQL the new foreign keys were made IMMEDIATE by AddField, so the NOT NULL
    # below finds no checks pending.)


def refuse_repeated_names(apps, schema_editor):
    """Going back, names become unique everywhere again: say which ones two regions share
    instead of failing on a unique index."""
    db = schema_editor.connection.alias
    repeated = []
    for model, fields in (("Subdistrict", ("name", "code")), ("Department", ("name",))):
        rows = apps.get_model("supervision", model).objects.using(db)
        for field in fields:
            values = (
                rows.values(field)
                .annotate(n=models.Count("pk"))
                .filter(n__gt=1)
                .values_list(field, flat=True)
            )
            repeated += [f"{model}.{field}={value}" for value in values[:10]]
    if repeated:
        raise RuntimeError(
            "不能撤销 0025_regions：以下名称或代码在不同县（市、区）中重复，请先改名或删除："
            + "、".join(repeated)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("supervision", "0024_photo_states"),
    ]

    operations = [
        migrations.CreateModel(
            name="Region",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, editable=False, verbose_name="创建时间"
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="更新时间")),
                ("name", models.CharField(max_length=50, verbose_name="名称")),
                (
                    "level",
                    models.CharField(
                        choices=[("province", "省"), ("city", "市"), ("county", "县级")],
                        max_length=10,
                        verbose_name="级别",
                    ),
                ),
                (
                    "code",
                    models.CharField(
                        help_text="GB/T 2260 的 6 位代码，例如 瑞安市 330381。",
                        max_length=6,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[0-9]{6}\\Z", "区划代码是 6 位数字。"
                            )
                        ],
                        verbose_name="区划代码",
                    ),
                ),
                (
                    "parent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="children",
                        to="supervision.region",
                        verbose_name="上级",
                    ),
                ),
            ],
            options={
                "verbose_name": "行政区划",
                "verbose_name_plural": "行政区划",
                "ordering": ["code"],
            },
        ),
        migrations.AddConstraint(
            model_name="region",
            constraint=models.UniqueConstraint(
                fields=("parent", "name"), name="supervision_region_unique_name_in_parent"
            ),
        ),
        migrations.AddConstraint(
            model_name="region",
            constraint=models.UniqueConstraint(
                condition=models.Q(("parent__isnull", True)),
                fields=("name",),
                name="supervision_region_unique_province_name",
            ),
        ),
        migrations.AddConstraint(
            model_name="region",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("level", "province"), ("parent__isnull", True)),
                    models.Q(models.Q(("level", "province"), _negated=True), ("parent__isnull", False)),
                    _connector="OR",
                ),
                name="supervision_region_only_provinces_at_the_top",
            ),
        ),
        migrations.AddConstraint(
            model_name="region",
            constraint=models.CheckConstraint(
                condition=models.Q(("level__in", ["province", "city", "county"])),
                name="supervision_region_level_valid",
            ),
        ),
        # The new columns, empty at first ...
        migrations.AddField(
            model_name="subdistrict",
            name="region",
            field=models.ForeignKey(
                null=True,
                limit_choices_to={"level": "county"},
                on_delete=django.db.models.deletion.PROTECT,
                related_name="subdistricts",
                to="supervision.region",
                verbose_name="县（市、区）",
            ),
        ),
        migrations.AddField(
            model_name="department",
            name="region",
            field=models.ForeignKey(
                null=True,
                help_text="部门服务的县级行政区；名称在同一县（市、区）内不重复。",
                limit_choices_to={"level": "county"},
                on_delete=django.db.models.deletion.PROTECT,
                related_name="departments",
                to="supervision.region",
                verbose_name="县（市、区）",
            ),
        ),
        migrations.AddField(
            model_name="historicaldepartment",
            name="region",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="部门服务的县级行政区；名称在同一县（市、区）内不重复。",
                limit_choices_to={"level": "county"},
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="supervision.region",
                verbose_name="县（市、区）",
            ),
        ),
        migrations.AddField(
            model_name="subdistrict",
            name="stats_code",
            field=models.CharField(
                blank=True,
                help_text="国家统计局的 12 位统计用区划代码，可不填。",
                max_length=12,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[0-9]{12}\\Z", "统计用区划代码是 12 位数字。"
                    )
                ],
                verbose_name="统计用区划代码",
            ),
        ),
        # ... filled: everything so far is Ruian's ...
        migrations.RunPython(place_under_ruian, migrations.RunPython.noop, elidable=False),
        # ... and required from now on.
        migrations.AlterField(
            model_name="subdistrict",
            name="region",
            field=models.ForeignKey(
                limit_choices_to={"level": "county"},
                on_delete=django.db.models.deletion.PROTECT,
                related_name="subdistricts",
                to="supervision.region",
                verbose_name="县（市、区）",
            ),
        ),
        migrations.AlterField(
            model_name="department",
            name="region",
            field=models.ForeignKey(
                help_text="部门服务的县级行政区；名称在同一县（市、区）内不重复。",
                limit_choices_to={"level": "county"},
                on_delete=django.db.models.deletion.PROTECT,
                related_name="departments",
                to="supervision.region",
                verbose_name="县（市、区）",
            ),
        ),
        # Names (and the subdistrict's slug) unique within a region, not everywhere.
        migrations.AlterField(
            model_name="subdistrict",
            name="name",
            field=models.CharField(max_length=50, verbose_name="名称"),
        ),
        migrations.AlterField(
            model_name="subdistrict",
            name="code",
            field=models.SlugField(max_length=30, verbose_name="代码"),
        ),
        migrations.AlterField(
            model_name="department",
            name="name",
            field=models.CharField(max_length=100, verbose_name="名称"),
        ),
        migrations.AlterField(
            model_name="historicaldepartment",
            name="name",
            field=models.CharField(max_length=100, verbose_name="名称"),
        ),
        migrations.AddConstraint(
            model_name="subdistrict",
            constraint=models.UniqueConstraint(
                fields=("region", "name"), name="supervision_subdistrict_unique_name_in_region"
            ),
        ),
        migrations.AddConstraint(
            model_name="subdistrict",
            constraint=models.UniqueConstraint(
                fields=("region", "code"), name="supervision_subdistrict_unique_code_in_region"
            ),
        ),
        migrations.AddConstraint(
            model_name="subdistrict",
            constraint=models.UniqueConstraint(
                condition=models.Q(("stats_code", ""), _negated=True),
                fields=("stats_code",),
                name="supervision_subdistrict_unique_stats_code",
            ),
        ),
        migrations.AddConstraint(
            model_name="department",
            constraint=models.UniqueConstraint(
                fields=("region", "name"), name="supervision_department_unique_name_in_region"
            ),
        ),
        migrations.AlterModelOptions(
            name="subdistrict",
            options={
                "ordering": ["region__code", "code"],
                "verbose_name": "街道",
                "verbose_name_plural": "街道",
            },
        ),
        # Last, so that it is the first step back.
        migrations.RunPython(migrations.RunPython.noop, refuse_repeated_names, elidable=False),
    ]
