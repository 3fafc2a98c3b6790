"""Restore a backup made by export_data into an empty, migrated database."""

import json
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from supervision import fragments, public_cache, rollups
from supervision.models import Issue, Project, Region

REGIONAL_ROLES = {"supervisor", "bureau", "oversight"}
# Rows that point at a county-level region since migration 0025; a backup made before it has
# none, and everything in it was Ruian's.
PLACED_IN_A_REGION = {
    "supervision.subdistrict",
    "supervision.department",
    "supervision.historicaldepartment",
}


class Command(BaseCommand):
    help = "从 export_data 的 zip 备份恢复到一个空数据库（需先 migrate）。"

    def add_arguments(self, parser):
        parser.add_argument("path", help="the zip file written by export_data")

    def handle(self, *args, path, **options) -> None:
        source = Path(path)
        if not zipfile.is_zipfile(source):
            raise CommandError("不是 export_data 生成的 zip 文件。")
        if Project.objects.exists() or Issue.objects.exists():
            raise CommandError("数据库不是空的：请在新建并 migrate 过的数据库上恢复。")
        media = Path(settings.MEDIA_ROOT)
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            if "data.json" not in names:
                raise CommandError("备份里没有 data.json。")
            for name in names:
                if name.startswith("media/") and not name.endswith("/"):
                    relative = Path(name[len("media/") :])
                    if relative.is_absolute() or ".." in relative.parts:
                        raise CommandError(f"备份中有可疑的文件路径：{name}")
            archive.extract("data.json", tmp)
            data = Path(tmp) / "data.json"
            with transaction.atomic():
                if mentions(data, b'"supervision.region"'):
                    clear_unused_regions()
                else:
                    place_under_ruian(data)
                call_command("loaddata", str(data), verbosity=0)
            # The dashboard's counts are derived: counted again from what was loaded, so a
            # backup made before the rollups existed restores complete figures too.
            rollups.rebuild()
            public_cache.public_changed()
            fragments.catalogue_changed()
            files = 0
            for name in names:
                if name.startswith("media/") and not name.endswith("/"):
                    target = media / name[len("media/") :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))
                    files += 1
        self.stdout.write(f"已恢复（媒体文件 {files} 个）。")


def mentions(path: Path, needle: bytes) -> bool:
    """Whether the file holds ``needle``, read a megabyte at a time."""
    tail = b""
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle) :]
    return False


def clear_unused_regions() -> None:
    """migrate made 浙江省 → 温州市 → 瑞安市 (0025); the backup brings its own rows, perhaps with
    other ids, so the ones nothing uses go first (from the county level up)."""
    for level in (Region.Level.COUNTY, Region.Level.CITY, Region.Level.PROVINCE):
        Region.objects.filter(
            level=level,
            children__isnull=True,
            subdistricts__isnull=True,
            departments__isnull=True,
        ).delete()


def place_under_ruian(path: Path) -> None:
    """A backup made before regions: its subdistricts and departments go under 瑞安市, as the
    migrations put those of a live database, and so do its supervisors and bureau coordinators."""
    objects = json.loads(path.read_text(encoding="utf-8"))
    ruian = Region.objects.ruian().pk
    for obj in objects:
        regional_user = (
            obj["model"] == "accounts.user" and obj["fields"].get("role") in REGIONAL_ROLES
        )
        if obj["model"] in PLACED_IN_A_REGION or regional_user:
            obj["fields"].setdefault("region", ruian)
    path.write_text(json.dumps(objects, ensure_ascii=False), encoding="utf-8")
