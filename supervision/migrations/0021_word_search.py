"""Word search: an FTS5 index (SQLite) or a tsvector column with a GIN index (PostgreSQL) over
issues' references, titles and descriptions, kept by triggers (supervision/search.py)."""

from django.db import migrations

from supervision import search


def install(apps, schema_editor) -> None:
    search.install(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    search.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("supervision", "0020_notices_and_survey_events")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
