"""Word search over issues: reference numbers, titles and descriptions, in Chinese.

Chinese has no spaces between words, and a trigram index cannot find a word of two characters
(漏水, 围挡), so the text is cut into overlapping pairs of characters: 「楼顶漏水」 is indexed as
楼顶, 顶漏, 漏水 and 水 (the last character of each run alone, so that every character starts
some token and a one-character search still finds it). Latin letters and digits are whole words
(a reference 2023-00042 gives 2023, 00042 and 42). A search for 脚手架 asks for 脚手 and 手架
together.

Where the tokens live:

- SQLite: an FTS5 table without content of its own, ``supervision_issue_search(title, body)``,
  its rowid the issue's id (title: the reference and the title). Triggers on the issue table
  keep it, through ``supervision_search_tokens()``, this module's tokeniser registered on every
  connection (``connect``). Django rebuilds a SQLite table to alter it, which drops its
  triggers: after every ``migrate`` they are put back and the index rebuilt if they were gone.
- PostgreSQL: two ``tsvector`` columns on the issue table, ``search_title`` (the reference and
  the title) and ``search_vector`` (everything), not in the model (no query of Django's reads
  them), kept by a trigger with the same tokeniser in PL/pgSQL, each with a GIN index.

Both come from one migration (``install``); ``manage.py rebuild_search`` refills the index
(after a change to the tokeniser). Searches run inside whatever queryset they are given
(``Issue.objects.visible_to(user)``): what a person may not see is never found or counted.

Results are ranked (``ranked``): the more of the words in the title (or the reference) first,
then the newest. Past ``COUNT_CAP`` matches among many issues, the ranking is among the newest
matches and the newest title matches.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import BooleanField, Expression, F, Func, IntegerField, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.signals import post_migrate

from .keyset import COUNT_CAP, KeysetPage
from .models import Issue

# A run of Latin letters and digits, or of Chinese characters (the unified ideographs, extension
# A, compatibility ideographs and the supplementary planes' extensions). The same expression is
# in the PL/pgSQL tokeniser below.
RUNS = re.compile(r"[0-9A-Za-z]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+")
# A longer search asks for its first words only (a pasted paragraph stays a bounded query).
MAX_TERMS = 16
FTS_TABLE = "supervision_issue_search"
# Among at most this many issues (a department's, a project's), ``ranked`` reads every match;
# among more, the newest COUNT_CAP matches and this many of the newest title matches (ten pages).
FEW = 10_000
TITLES = 200
CURSOR_PREFIX = "r"


def tokens(text: str | None) -> list[str]:
    """What a text is indexed as (see the module's docstring)."""
    found: list[str] = []
    for run in RUNS.findall(unicodedata.normalize("NFKC", text or "")):
        if run[0].isascii():
            word = run.lower()
            found.append(word)
            if word[0] == "0" and word.isdigit() and word.strip("0"):
                found.append(word.lstrip("0"))  # 00042 is also found as 42
        else:
            found.extend(run[i : i + 2] for i in range(len(run) - 1))
            found.append(run[-1])
    return found


def document(text: str | None) -> str:
    """The tokens of ``text`` as the SQLite index reads them (``supervision_search_tokens``)."""
    return " ".join(tokens(text))


@dataclass(frozen=True)
class Term:
    text: str
    prefix: bool = False  # one character: any token that starts with it


def terms(words: str) -> list[Term]:
    """What a search asks for, every one of them: the pairs of each run of characters (a lone
    character as a prefix), and each Latin word or number whole, except a word of letters the
    search ends in: that one may be half typed (``scaff`` finds scaffold), so it is a prefix.
    Numbers stay whole (``2`` must not find every issue of 2026). Punctuation asks for nothing."""
    found: dict[Term, None] = {}
    normalized = unicodedata.normalize("NFKC", words)
    for match in RUNS.finditer(normalized):
        run = match.group()
        if run[0].isascii():
            typing = match.end() == len(normalized.rstrip()) and not run.isdigit()
            found[Term(run.lower(), prefix=typing)] = None
        elif len(run) == 1:
            found[Term(run, prefix=True)] = None
        else:
            found.update((Term(run[i : i + 2]), None) for i in range(len(run) - 1))
    return list(found)[:MAX_TERMS]


# --- the condition ------------------------------------------------------------------------------


class _VectorMatch(Expression):
    """``<issue>.<column> @@ <query>::tsquery`` (PostgreSQL), on whatever alias the issue
    table has in the query. ``checked``: the same test, hidden from the planner in a
    ``COALESCE``, which it then takes for true of half the rows and checks row by row."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, tsquery: str, column: str, checked: bool, alias: str | None = None):
        super().__init__()
        self.tsquery, self.column, self.checked, self.alias = tsquery, column, checked, alias

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, **kw):
        alias = query.get_initial_alias()
        return _VectorMatch(self.tsquery, self.column, self.checked, alias)

    def relabeled_clone(self, change_map: dict[str, str]) -> _VectorMatch:
        alias = change_map.get(self.alias, self.alias)
        return _VectorMatch(self.tsquery, self.column, self.checked, alias)

    def as_sql(self, compiler, connection) -> tuple[str, list]:
        test = f"{compiler.quote_name_unless_alias(self.alias)}.{self.column} @@ %s::tsquery"
        return (f"COALESCE({test}, false)" if self.checked else test), [self.tsquery]


def _fts_query(wanted: list[Term], *, title: bool = False) -> str:
    """An FTS5 query for every term (in the title column only: ``title``)."""
    expression = " AND ".join(f'"{term.text}"{"*" if term.prefix else ""}' for term in wanted)
    return f"title : ({expression})" if title else expression


def _vector_match(
    wanted: list[Term], *, title: bool = False, checked: bool = False
) -> _VectorMatch:
    """Every term in the issue (in its reference or title only: ``title``). The terms are
    letters, digits and Chinese characters only: nothing in them needs quoting."""
    tsquery = " & ".join(f"'{term.text}'{':*' if term.prefix else ''}" for term in wanted)
    return _VectorMatch(tsquery, "search_title" if title else "search_vector", checked)


def _postgres(issues: QuerySet[Issue]) -> bool:
    return connections[issues.db].vendor == "postgresql"


def _index_query(wanted: list[Term]) -> RawSQL:
    sql = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"  # noqa: S608
    return RawSQL(sql, (_fts_query(wanted),))


def _checked_by_row(issues: QuerySet[Issue], wanted: list[Term]) -> QuerySet[Issue]:
    """SQLite: ``+id IN (matches)``. The unary plus keeps the planner from looking up every
    match by id: it reads the issues by their other conditions or their order (a department's
    index, the newest first) and checks each against the list of matches."""
    plus_pk = Func(F("pk"), template="+%(expressions)s", output_field=IntegerField())
    return issues.alias(search_pk=plus_pk).filter(search_pk__in=_index_query(wanted))


def matching(issues: QuerySet[Issue], words: str) -> QuerySet[Issue]:
    """The issues of ``issues`` whose reference, title or description hold every word of
    ``words``, for any order and any count; none for a search of punctuation only."""
    wanted = terms(words)
    if not wanted:
        return issues.none()
    if _postgres(issues):
        return issues.filter(_vector_match(wanted))
    if _few(issues):  # a department's: read them and check each against the matches
        return _checked_by_row(issues, wanted)
    return issues.filter(pk__in=_index_query(wanted))  # look each match up


def _few(issues: QuerySet[Issue]) -> bool:
    """Whether ``issues`` are restricted (by who is looking, by other filters) to ``FEW`` or
    fewer: a bounded count, by an index."""
    return bool(issues.query.where) and issues.order_by().values("pk")[: FEW + 1].count() <= FEW


# --- ranked results -----------------------------------------------------------------------------

Row = tuple[int, str, str, datetime]  # pk, reference, title, created_at: what ranks an issue
COLUMNS = ("pk", "reference", "title", "created_at")


def _newest(issues: QuerySet[Issue], wanted: list[Term], *, title: bool, limit: int) -> list[Row]:
    """The newest ``limit`` of the issues of ``issues`` holding every term (in the reference or
    title only: ``title``), or all of them when there are fewer; in any order."""
    if not _postgres(issues):
        # A join (which the ORM cannot write to a virtual table) read in the index's order, the
        # highest id first, which stops at the limit; ``id IN (…)`` would first list every
        # match (68,000 for 漏水 at province scale, 12 ms).
        table = issues.model._meta.db_table
        joined = issues.extra(
            tables=[FTS_TABLE],
            where=[f"{FTS_TABLE}.rowid = {table}.id", f"{FTS_TABLE} MATCH %s"],
            params=[_fts_query(wanted, title=title)],
        )
        newest = joined.order_by(RawSQL(f"{FTS_TABLE}.rowid", ()).desc())
        return list(newest.values_list(*COLUMNS)[:limit])
    found = issues.filter(_vector_match(wanted, title=title))
    some = list(found.order_by().values_list("pk", flat=True)[:limit])  # any order, a first look
    if len(some) < limit:
        return list(Issue.objects.filter(pk__in=some).values_list(*COLUMNS))
    # Many: read the ids downwards and check each row, which stops at the limit. PostgreSQL
    # takes the pairs of characters for independent (脚手 and 手架 are not), expects a few
    # matches and would fetch and sort every one of them (28,000 for 雨水井堵塞: 80 ms).
    checked = issues.filter(_vector_match(wanted, title=title, checked=True))
    return list(checked.order_by("-pk").values_list(*COLUMNS)[:limit])


@dataclass
class Ranked:
    rows: list[Row]  # best first, at most COUNT_CAP
    capped: bool  # more matched than COUNT_CAP


def ranked(issues: QuerySet[Issue], words: str) -> Ranked:
    """The issues of ``issues`` that ``matching`` finds, best first: the more of the words in
    the reference or title, the higher; then the newest.

    Among few issues (a department's, a project's), every match is read. Among many, two
    bounded queries at most: the newest ``COUNT_CAP`` matches and, when there are more, the
    newest ``TITLES`` of those that match in the title, so that the first pages never lose a
    title behind newer mentions in descriptions.
    """
    wanted = terms(words)
    if not wanted:
        return Ranked([], False)
    if _few(issues):
        if _postgres(issues):
            among = issues.filter(_vector_match(wanted))
        else:
            among = _checked_by_row(issues, wanted)
        rows: list[Row] = list(among.order_by().values_list(*COLUMNS))
    else:
        rows = _newest(issues, wanted, title=False, limit=COUNT_CAP + 1)
        if len(rows) > COUNT_CAP:
            titled = _newest(issues, wanted, title=True, limit=TITLES)
            seen = {row[0] for row in titled}
            rows = titled + [row for row in rows if row[0] not in seen]
    needles = [term.text for term in wanted]

    def rank(row: Row) -> tuple[int, datetime, int]:
        heading = unicodedata.normalize("NFKC", f"{row[1]} {row[2]}").lower()
        return sum(needle in heading for needle in needles), row[3], row[0]

    rows.sort(key=rank, reverse=True)
    return Ranked(rows[:COUNT_CAP], len(rows) > COUNT_CAP)


def _offset(cursor: str | None) -> int | None:
    if cursor and cursor.startswith(CURSOR_PREFIX) and cursor[1:].isascii():
        digits = cursor[1:]
        if digits.isdigit() and len(digits) < 6:
            return int(digits)
    return None


def page(
    issues: QuerySet[Issue], words: str, *, before: str | None, after: str | None, size: int
) -> KeysetPage:
    """One page of ``ranked(issues, words)`` for the issue list: its rows need only ``pk`` and
    ``updated_at`` (``fragments.issue_cards``). The cursors are places in the ranking
    (``r40``), as the list's links carry them (``before``: the next page, ``after``: back)."""
    result = ranked(issues, words)
    start = 0
    if (end := _offset(after)) is not None:
        start = max(0, end - size)
    elif (begin := _offset(before)) is not None:
        start = min(begin, len(result.rows))
    shown = [row[0] for row in result.rows[start : start + size]]
    updated = dict(Issue.objects.filter(pk__in=shown).values_list("pk", "updated_at"))
    return KeysetPage(
        [Issue(id=pk, updated_at=updated[pk]) for pk in shown if pk in updated],
        older=f"{CURSOR_PREFIX}{start + size}" if start + size < len(result.rows) else None,
        newer=f"{CURSOR_PREFIX}{start}" if start > 0 else None,
        total=len(result.rows),
        total_is_capped=result.capped,
    )


# --- the index ----------------------------------------------------------------------------------

SQLITE_TRIGGERS = {
    "supervision_issue_search_insert": f"""
        CREATE TRIGGER IF NOT EXISTS supervision_issue_search_insert
        AFTER INSERT ON supervision_issue BEGIN
            INSERT INTO {FTS_TABLE} (rowid, title, body) VALUES (
                new.id,
                supervision_search_tokens(new.reference || ' ' || new.title),
                supervision_search_tokens(new.description)
            );
        END""",
    # A contentless FTS5 table forgets a row when told exactly what it had indexed: the old
    # values, through the same (deterministic) tokeniser.
    "supervision_issue_search_update": f"""
        CREATE TRIGGER IF NOT EXISTS supervision_issue_search_update
        AFTER UPDATE OF reference, title, description ON supervision_issue
        WHEN old.reference IS NOT new.reference OR old.title IS NOT new.title
            OR old.description IS NOT new.description
        BEGIN
            INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, title, body) VALUES (
                'delete',
                old.id,
                supervision_search_tokens(old.reference || ' ' || old.title),
                supervision_search_tokens(old.description)
            );
            INSERT INTO {FTS_TABLE} (rowid, title, body) VALUES (
                new.id,
                supervision_search_tokens(new.reference || ' ' || new.title),
                supervision_search_tokens(new.description)
            );
        END""",
    "supervision_issue_search_delete": f"""
        CREATE TRIGGER IF NOT EXISTS supervision_issue_search_delete
        AFTER DELETE ON supervision_issue BEGIN
            INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, title, body) VALUES (
                'delete',
                old.id,
                supervision_search_tokens(old.reference || ' ' || old.title),
                supervision_search_tokens(old.description)
            );
        END""",
}

# The PL/pgSQL twin of ``tokens`` (a test holds the two together).
POSTGRES_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION supervision_search_tokens(body text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    run text;
    n integer;
    found text[] := '{}';
BEGIN
    FOR run IN
        SELECT m[1] FROM regexp_matches(
            normalize(body, NFKC),
            '([0-9A-Za-z]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+)',
            'g'
        ) AS m
    LOOP
        IF run ~ '^[0-9A-Za-z]' THEN
            found := found || lower(run);
            IF run ~ '^0[0-9]*$' AND ltrim(run, '0') <> '' THEN
                found := found || ltrim(run, '0');
            END IF;
        ELSE
            n := char_length(run);
            FOR i IN 1 .. n - 1 LOOP
                found := found || substr(run, i, 2);
            END LOOP;
            found := found || substr(run, n, 1);
        END IF;
    END LOOP;
    RETURN found;
END
$$;

-- What the title column indexes: the reference and the title.
CREATE OR REPLACE FUNCTION supervision_search_heading(reference text, title text)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT supervision_search_tokens(coalesce(reference, '') || ' ' || coalesce(title, ''))
$$;

CREATE OR REPLACE FUNCTION supervision_issue_search_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    heading text[];
BEGIN
    IF TG_OP = 'INSERT' OR NEW.search_vector IS NULL OR NEW.search_title IS NULL
        OR NEW.reference IS DISTINCT FROM OLD.reference
        OR NEW.title IS DISTINCT FROM OLD.title
        OR NEW.description IS DISTINCT FROM OLD.description
    THEN
        heading := supervision_search_heading(NEW.reference, NEW.title);
        NEW.search_title := array_to_tsvector(heading);
        NEW.search_vector := array_to_tsvector(
            heading || coalesce(supervision_search_tokens(NEW.description), '{}')
        );
    END IF;
    RETURN NEW;
END
$$;
"""


def install(connection: BaseDatabaseWrapper) -> None:
    """Create the index and what keeps it, and fill it from the issues already there."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for column in ("search_title", "search_vector"):
                cursor.execute(
                    f"ALTER TABLE supervision_issue ADD COLUMN IF NOT EXISTS {column} tsvector"
                )
            cursor.execute(POSTGRES_FUNCTIONS)
            # No column list, no WHEN: either would forbid altering those columns' types.
            cursor.execute(
                "CREATE OR REPLACE TRIGGER supervision_issue_search"
                " BEFORE INSERT OR UPDATE ON supervision_issue"
                " FOR EACH ROW EXECUTE FUNCTION supervision_issue_search_update()"
            )
            rebuild(connection)
            for column in ("search_title", "search_vector"):
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS supervision_issue_{column}_idx"
                    f" ON supervision_issue USING gin ({column})"
                )
        elif connection.vendor == "sqlite":
            # ascii: every character outside ASCII is part of a token, so the tokens are read
            # exactly as written, space-separated. detail=column: no positions, only which
            # column (enough for the title's rank).
            cursor.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
                "title, body, content='', tokenize='ascii', detail='column', columnsize=0)"
            )
            for sql in SQLITE_TRIGGERS.values():
                cursor.execute(sql)
            rebuild(connection)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER IF EXISTS supervision_issue_search ON supervision_issue")
            cursor.execute(
                "ALTER TABLE supervision_issue"
                " DROP COLUMN IF EXISTS search_title, DROP COLUMN IF EXISTS search_vector"
            )
            cursor.execute(
                "DROP FUNCTION IF EXISTS supervision_issue_search_update();"
                "DROP FUNCTION IF EXISTS supervision_search_heading(text, text);"
                "DROP FUNCTION IF EXISTS supervision_search_tokens(text);"
            )
        elif connection.vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def rebuild(connection: BaseDatabaseWrapper) -> None:
    """Index every issue afresh, with the tokeniser as this code has it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(POSTGRES_FUNCTIONS)
            # The trigger fills what is empty.
            cursor.execute("UPDATE supervision_issue SET search_vector = NULL")
        elif connection.vendor == "sqlite":
            cursor.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('delete-all')")
            cursor.execute(
                f"INSERT INTO {FTS_TABLE} (rowid, title, body)"  # noqa: S608
                " SELECT id, supervision_search_tokens(reference || ' ' || title),"
                " supervision_search_tokens(description) FROM supervision_issue"
            )


def _add_tokeniser(sender, connection: BaseDatabaseWrapper, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "supervision_search_tokens", 1, document, deterministic=True
        )


def _put_back_triggers(sender, using: str = "default", **kwargs) -> None:
    """After a migration rebuilt the issue table (SQLite), its triggers are back and the index
    holds what the table does."""
    connection = connections[using]
    if getattr(sender, "label", None) != "supervision" or connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, name FROM sqlite_master WHERE name = %s OR name IN (%s, %s, %s)",
            [FTS_TABLE, *SQLITE_TRIGGERS],
        )
        present = {name for _, name in cursor.fetchall()}
    if FTS_TABLE in present and not present.issuperset(SQLITE_TRIGGERS):
        install(connection)


def connect() -> None:
    """From ``SupervisionConfig.ready``: the tokeniser on every SQLite connection, and the
    triggers' repair after ``migrate``."""
    connection_created.connect(_add_tokeniser, dispatch_uid="supervision-search-tokeniser")
    post_migrate.connect(_put_back_triggers, dispatch_uid="supervision-search-triggers")
