"""``make restore-drill``: back up and restore the generated province, timed, and check the copy.

On PostgreSQL (``DRILL_PG``, default ``postgres://postgres@127.0.0.1:5432``, a user allowed to
create databases):

1. ``drill_src``: ``migrate`` and ``generate_scale --profile $DRILL_PROFILE`` (province);
2. a snapshot of it: rows per table (every table of the database), a fingerprint of each table's
   rows (md5 of the rows in primary-key order), the dashboard's figures (the bureau's whole
   programme from the rollups, a subdistrict office's counted from its issues, the home page's
   headline) at one fixed ``now``, and the media files;
3. ``pg_dump -Fc`` of it, then ``pg_restore -j 2`` into a fresh ``drill_restore``: timed,
   snapshot, compared;
4. ``export_data`` to a zip, then ``migrate`` and ``import_data`` into a fresh ``drill_import``
   with an empty ``MEDIA_ROOT``: timed, snapshot, compared.

Prints a table, writes benchmarks/restore_drill.json, drops the three databases (``--keep``
keeps them) and removes its files. ``python benchmarks/restore_drill.py --snapshot NOW``
is the helper it runs inside each database (``DATABASE_URL`` set) and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("DRILL_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
PROFILE = os.environ.get("DRILL_PROFILE", "province")
# Seconds import_data may take before the drill gives it up (0: no limit).
IMPORT_TIMEOUT = float(os.environ.get("DRILL_IMPORT_TIMEOUT", "0"))
SOURCE, RESTORED, IMPORTED = "drill_src", "drill_restore", "drill_import"
# Tables export_data leaves out on purpose (rebuilt by migrate, or transient): their rows may
# differ after import_data without anything being lost.
NOT_EXPORTED = (
    "django_content_type",
    "auth_permission",
    "django_session",
    "django_admin_log",
    "axes_",
    "django_tasks_database",
)
# Written by migrate and by the signals that loaddata sends: when, not what.
BOOKKEEPING = ("django_migrations", "supervision_catalogueversion", "supervision_publicversion")
# Counted again from the issues by import_data (rollups.rebuild): the same rows under new
# surrogate ids, so they are compared without their id.
DERIVED = (
    "supervision_issuerollup",
    "supervision_durationrollup",
    "supervision_dayrollup",
    "supervision_activityrollup",
)


# --- inside one database (``--snapshot``) ------------------------------------------------------


def snapshot(now_iso: str) -> dict:
    import django  # noqa: PLC0415

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    django.setup()
    from django.conf import settings  # noqa: PLC0415
    from django.core.serializers.json import DjangoJSONEncoder  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from supervision import stats  # noqa: PLC0415
    from supervision.models import Department  # noqa: PLC0415

    now = datetime.fromisoformat(now_iso)
    tables: dict[str, dict] = {}
    with connection.cursor() as cursor:
        for name in sorted(connection.introspection.table_names(cursor)):
            quoted = connection.ops.quote_name(name)
            cursor.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                [quoted],
            )
            keys = [row[0] for row in cursor.fetchall()]
            order = ", ".join(f"t.{connection.ops.quote_name(k)}" for k in keys) or "t::text"
            # The same rows with their times cut to the millisecond: what JSON keeps of them.
            cursor.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum",
                [quoted],
            )
            columns = [
                f"date_trunc('milliseconds', t.{connection.ops.quote_name(column)})"
                if kind.startswith("timestamp")
                else f"t.{connection.ops.quote_name(column)}"
                for column, kind in cursor.fetchall()
            ]
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')),"
                f" md5(coalesce(string_agg(row({', '.join(columns)})::text, E'\\n'"
                f" ORDER BY {order}), '')) FROM {quoted} t"
            )
            rows, digest, digest_ms = cursor.fetchone()
            tables[name] = {"rows": rows, "md5": digest, "md5_ms": digest_ms}
            if name in DERIVED:
                values = ", ".join(
                    c for c in columns if c != f"t.{connection.ops.quote_name('id')}"
                )
                cursor.execute(
                    f"SELECT md5(coalesce(string_agg(r, E'\\n' ORDER BY r), ''))"
                    f" FROM (SELECT row({values})::text AS r FROM {quoted} t) rows"
                )
                tables[name]["md5_without_id"] = cursor.fetchone()[0]
        # Every serial/identity sequence ahead of its column: new rows get fresh ids.
        cursor.execute(
            "SELECT c.relname, a.attname, pg_get_serial_sequence(quote_ident(c.relname), a.attname)"
            " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
            " AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL"
        )
        behind = []
        for table, column, sequence in cursor.fetchall():
            cursor.execute(
                f"SELECT (SELECT last_value FROM {sequence}),"
                f" (SELECT coalesce(max({connection.ops.quote_name(column)}), 0)"
                f" FROM {connection.ops.quote_name(table)})"
            )
            last, highest = cursor.fetchone()
            if last < highest:
                behind.append(f"{table}.{column}: sequence {last} < max {highest}")

    office = (
        Department.objects.filter(kind=Department.Kind.SUBDISTRICT_OFFICE).order_by("pk").first()
    )
    everything = stats.Period(None, None, "")
    figures = {
        "bureau_all": stats.figures_of(stats.bureau_cube(everything, now)),
        "programme_headline": stats.programme_headline(),
    }
    if office is not None:
        scope = f"dept{office.pk}"
        figures[f"office_{office.name}"] = stats.figures_of(
            stats.live_cube(stats.scope_issues(scope), stats.scope_patrols(scope), now)
        )
    media = Path(settings.MEDIA_ROOT)
    files = sorted(
        f"{p.relative_to(media)}:{p.stat().st_size}" for p in media.rglob("*") if p.is_file()
    )
    # The figures' dictionaries may have non-string keys: normalise through JSON.
    figures = json.loads(json.dumps(_stringify(figures), cls=DjangoJSONEncoder, sort_keys=True))
    return {
        "tables": tables,
        "sequences_behind": behind,
        "figures": figures,
        "media_files": files,
    }


def _stringify(value):
    if isinstance(value, dict):
        return {str(k): _stringify(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stringify(v) for v in value]
    return value


# --- the drill ---------------------------------------------------------------------------------


def environment(database: str, media: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CACHE_URL",)}
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="restore-drill-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"{PG}/{database}",
        MEDIA_ROOT=str(media),
    )
    return env


def run(command: list[str], env: dict | None = None, timeout: float | None = None) -> float:
    started = time.monotonic()
    subprocess.run(
        command, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, timeout=timeout
    )
    return round(time.monotonic() - started, 1)


def manage(env: dict, *arguments: str, timeout: float | None = None) -> float:
    return run([sys.executable, "manage.py", *arguments], env, timeout)


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def recreate(database: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    psql(f"CREATE DATABASE {database}")


def take_snapshot(env: dict, now_iso: str) -> tuple[dict, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, "--snapshot", now_iso],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.stderr.write(done.stderr)
        done.check_returncode()
    out = done.stdout
    return json.loads(out.strip().splitlines()[-1]), round(time.monotonic() - started, 1)


def compare(before: dict, after: dict, *, exported_only: bool) -> dict:
    """What differs: tables (rows or content), figures, media files, sequences."""
    rows, content, expected, milliseconds, recounted = [], [], [], [], []
    for name in sorted(set(before["tables"]) | set(after["tables"])):
        a = before["tables"].get(name, {"rows": None, "md5": None})
        b = after["tables"].get(name, {"rows": None, "md5": None})
        if a == b:
            continue
        entry = f"{name}: {a['rows']} → {b['rows']}"
        if exported_only and name.startswith(NOT_EXPORTED + BOOKKEEPING):
            expected.append(entry)
        elif a["rows"] != b["rows"]:
            rows.append(entry)
        elif a["md5_ms"] == b["md5_ms"]:
            milliseconds.append(name)
        elif a.get("md5_without_id") and a.get("md5_without_id") == b.get("md5_without_id"):
            recounted.append(name)
        else:
            content.append(name)
    figures = sorted(
        key
        for key in set(before["figures"]) | set(after["figures"])
        if before["figures"].get(key) != after["figures"].get(key)
    )
    return {
        "tables": len(after["tables"]),
        "rows_before": sum(t["rows"] for t in before["tables"].values()),
        "rows_after": sum(t["rows"] for t in after["tables"].values()),
        "every_table_equal": not rows and not content and not milliseconds,
        "every_table_same_row_count": not rows,
        "row_count_differences": rows,
        "content_differences": content,
        "sub_millisecond_differences_only": milliseconds,
        "recounted_same_rows_new_ids": recounted,
        "not_exported_differences": expected,
        "figures_equal": not figures,
        "figure_differences": figures,
        "media_equal": before["media_files"] == after["media_files"],
        "sequences_behind": after["sequences_behind"],
    }


def size_mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 1)


def drill(keep: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="restore-drill-"))
    source_media, import_media = work / "media-src", work / "media-import"
    source_media.mkdir()
    import_media.mkdir()
    src, restored, imported = (
        environment(SOURCE, source_media),
        environment(RESTORED, source_media),  # pg_dump holds no media: the copy is the same
        environment(IMPORTED, import_media),
    )
    result: dict = {
        "profile": PROFILE,
        "database": f"{PG}/…",
        "started": datetime.now().isoformat(),
    }
    t = result["seconds"] = {}
    try:
        recreate(SOURCE)
        t["migrate_source"] = manage(src, "migrate", "--noinput")
        t["generate"] = manage(src, "generate_scale", "--profile", PROFILE)
        now_iso = datetime.now().astimezone().isoformat()
        before, t["snapshot"] = take_snapshot(src, now_iso)
        result["tables"] = {k: v["rows"] for k, v in before["tables"].items()}
        result["figures_headline"] = before["figures"]["bureau_all"]["headline"]
        subprocess.run(["psql", f"{PG}/{SOURCE}", "-q", "-c", "VACUUM ANALYZE"], check=True)
        result["database_mb"] = round(
            int(
                subprocess.run(
                    [
                        "psql",
                        f"{PG}/{SOURCE}",
                        "-Atc",
                        "SELECT pg_database_size(current_database())",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            / 1e6,
            1,
        )

        dump = work / "drill.dump"
        t["pg_dump"] = run(["pg_dump", "-Fc", "-f", str(dump), f"{PG}/{SOURCE}"])
        result["pg_dump_mb"] = size_mb(dump)
        recreate(RESTORED)
        t["pg_restore"] = run(
            ["pg_restore", "-j", "2", "--no-owner", "-d", f"{PG}/{RESTORED}", str(dump)]
        )
        after, _ = take_snapshot(restored, now_iso)
        result["pg_restore_check"] = compare(before, after, exported_only=False)

        backup = work / "drill.zip"
        t["export_data"] = manage(src, "export_data", str(backup))
        result["export_zip_mb"] = size_mb(backup)
        recreate(IMPORTED)
        t["migrate_import"] = manage(imported, "migrate", "--noinput")
        try:
            t["import_data"] = manage(
                imported, "import_data", str(backup), timeout=IMPORT_TIMEOUT or None
            )
        except subprocess.TimeoutExpired:
            # One transaction: nothing of it stays, and nothing tells how far it got.
            result["import_data_unfinished_after_s"] = IMPORT_TIMEOUT
        else:
            after, _ = take_snapshot(imported, now_iso)
            result["import_check"] = compare(before, after, exported_only=True)
    finally:
        if not keep:
            for name in (SOURCE, RESTORED, IMPORTED):
                psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)
    return result


def report(result: dict) -> None:
    t = result["seconds"]
    print(f"\nrestore drill · {result['profile']} · database {result.get('database_mb')} MB")
    issues = result["tables"].get("supervision_issue")
    events = result["tables"].get("supervision_issueevent")
    print(
        f"{issues} issues, {events} events, {sum(result['tables'].values())} rows in "
        f"{len(result['tables'])} tables (generated in {t.get('generate')} s)"
    )
    print(f"{'route':<28}{'backup s':>10}{'size MB':>10}{'restore s':>11}  equal rows / figures")
    for label, backup, size, restore, check in (
        (
            "pg_dump -Fc / pg_restore -j 2",
            t.get("pg_dump"),
            result.get("pg_dump_mb"),
            t.get("pg_restore"),
            result.get("pg_restore_check"),
        ),
        (
            "export_data / import_data",
            t.get("export_data"),
            result.get("export_zip_mb"),
            round((t.get("migrate_import") or 0) + (t.get("import_data") or 0), 1),
            result.get("import_check"),
        ),
    ):
        if check is None:
            if label.startswith("export") and "import_data_unfinished_after_s" in result:
                print(
                    f"{label:<28}{backup:>10}{size:>10}  import_data unfinished after "
                    f"{result['import_data_unfinished_after_s']:.0f} s"
                )
            continue
        same = not check["row_count_differences"] and not check["content_differences"]
        verdict = (
            f"{'yes' if check['every_table_equal'] else 'yes, times to the ms' if same else 'NO'} / "
            f"{'yes' if check['figures_equal'] else 'NO'}"
        )
        print(f"{label:<28}{backup:>10}{size:>10}{restore:>11}  {verdict}")
        for key in (
            "row_count_differences",
            "content_differences",
            "figure_differences",
            "sub_millisecond_differences_only",
            "recounted_same_rows_new_ids",
            "not_exported_differences",
            "sequences_behind",
        ):
            for line in check[key]:
                print(f"    {key}: {line}")
        if not check["media_equal"]:
            print("    media files differ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", metavar="NOW", help="(internal) snapshot one database")
    parser.add_argument("--keep", action="store_true", help="keep the drill databases")
    args = parser.parse_args()
    if args.snapshot:
        print(json.dumps(snapshot(args.snapshot), ensure_ascii=False))
        return 0
    result = drill(args.keep)
    report(result)
    out = ROOT / "benchmarks" / "restore_drill.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")
    # pg_restore gives back every row exactly. JSON keeps times to the millisecond and
    # import_data counts the rollups again (new ids): the same data otherwise, nothing missing.
    dump, portable = result.get("pg_restore_check"), result.get("import_check")
    exact = bool(
        dump and dump["every_table_equal"] and dump["figures_equal"] and dump["media_equal"]
    )
    whole = bool(
        portable
        and not portable["row_count_differences"]
        and not portable["content_differences"]
        and portable["figures_equal"]
        and portable["media_equal"]
    )
    return 0 if exact and whole else 1


if __name__ == "__main__":
    sys.exit(main())
