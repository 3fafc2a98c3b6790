"""Backup: one zip with every table as JSON (dumpdata) and the media files (photos).

For PostgreSQL in production, `pg_dump` of the database plus a copy of MEDIA_ROOT is the
faster route (see the README); this command works on any database and restores anywhere.
"""

import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

# Tables that are rebuilt by migrate or are only transient state.
EXCLUDE = [
    "contenttypes",
    "auth.permission",
    "sessions",
    "admin.logentry",
    "axes",
    "django_tasks_database",
]


class Command(BaseCommand):
    help = "导出全部数据和照片为一个 zip 备份文件。Export every table and the media files to a zip."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the zip file to write")

    def handle(self, *args, path, **options) -> None:
        target = Path(path)
        media = Path(settings.MEDIA_ROOT)
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data.json"
            call_command(
                "dumpdata",
                exclude=EXCLUDE,
                natural_foreign=True,
                indent=None,
                output=str(data),
                verbosity=0,
            )
            files = 0
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.write(data, "data.json")
                if media.exists():
                    for file in sorted(media.rglob("*")):
                        if file.is_file():
                            archive.write(file, f"media/{file.relative_to(media)}")
                            files += 1
        self.stdout.write(f"已导出到 {target}（媒体文件 {files} 个）。")
