"""Backups: export_data writes a zip of every table and the photos; import_data restores it
into an empty database."""

import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from supervision import rollups
from supervision.models import Issue, IssueEvent, Photo, Project

from .factories import PASSWORD, image_file


@pytest.mark.django_db(transaction=True)
def test_export_then_import_into_an_empty_database_restores_everything(
    world, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        issue = world.issue_in("rectified", photos=[image_file()])
    before = {
        "issues": Issue.objects.count(),
        "events": IssueEvent.objects.count(),
        "photos": Photo.objects.count(),
        "projects": Project.objects.count(),
        "users": User.objects.count(),
    }
    photo_names = [p.image.name for p in Photo.objects.all()]
    figures = rollups.stored().nonzero()
    assert figures["issues"]
    backup = tmp_path / "backup.zip"
    call_command("export_data", str(backup), stdout=io.StringIO())
    with zipfile.ZipFile(backup) as archive:
        assert "data.json" in archive.namelist()
        assert all(f"media/{name}" in archive.namelist() for name in photo_names)

    call_command("flush", interactive=False, verbosity=0)
    for file in Path(settings.MEDIA_ROOT).rglob("*"):
        if file.is_file():
            file.unlink()
    assert not Issue.objects.exists()

    call_command("import_data", str(backup), stdout=io.StringIO())
    after = {
        "issues": Issue.objects.count(),
        "events": IssueEvent.objects.count(),
        "photos": Photo.objects.count(),
        "projects": Project.objects.count(),
        "users": User.objects.count(),
    }
    assert after == before
    # The dashboard's counts come back as they were, not counted twice by the loaded rows.
    assert rollups.stored().nonzero() == figures
    restored = Issue.objects.get(reference=issue.reference)
    assert restored.status == "rectified"
    assert all((Path(settings.MEDIA_ROOT) / name).exists() for name in photo_names)
    assert User.objects.get(username="alice").check_password(PASSWORD)


def test_import_refuses_a_database_that_is_not_empty(world, tmp_path):
    backup = tmp_path / "backup.zip"
    call_command("export_data", str(backup), stdout=io.StringIO())
    with pytest.raises(CommandError, match="不是空的"):
        call_command("import_data", str(backup), stdout=io.StringIO())


def test_import_refuses_files_that_would_escape_the_media_folder(db, tmp_path):
    backup = tmp_path / "evil.zip"
    with zipfile.ZipFile(backup, "w") as archive:
        archive.writestr("data.json", "[]")
        archive.writestr("media/../../etc/passwd", "x")
    with pytest.raises(CommandError, match="可疑"):
        call_command("import_data", str(backup), stdout=io.StringIO())
