"""HTML and choice lists that many requests show unchanged, built once and kept in a cache of
their own (``CACHES["fragments"]``), so that they never push out the login and rate-limit
counters or the figures kept in the default cache.

Three things are kept:

- **the options of the list filters** (projects, subdistricts, departments): they change a few
  times a year, yet building them read and rendered about a hundred rows on every view of the
  issue list;
- **the issue list's filter form** for each set of projects people see (all for the bureau, a
  department's own, a supervisor's own) and each choice of filters; never with words typed into
  the search box, nor with an error message;
- **each issue's card**, under a key holding the issue's ``updated_at`` (every workflow step saves
  it, see ``services._record``; changing a photo outside a step touches it, below), so a card
  changes the moment its issue does. Its clock words (「3 小时前」, 「已超期」) are kept for a
  minute at most. A card holds nothing about its viewer: which cards a page shows is decided by
  the database for each viewer, never cached.

The first two hold the *catalogue version* (``CatalogueVersion``, one row), which every
committed save or deletion of a subdistrict, department, neighbourhood or project, and every
change of who works on a project, replaces. Each process rereads it every few seconds, so a
renamed project shows at once in the process that renamed it and within ``VERSION_SECONDS`` in
every other, with or without a shared cache. Bulk changes that send no signals (the demo loader,
``generate_scale``) are caught up by the entries' own lifetimes.

When the cache fails (Redis down), pages are built without it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.cache import caches
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.forms import ModelChoiceField
from django.template.loader import get_template
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe

from .models import CatalogueVersion, Issue

log = logging.getLogger(__name__)

CACHE = "fragments"
VERSION_KEY = "catalogue-version"
VERSION_SECONDS = 5
CHOICES_SECONDS = 3600
CARD_SECONDS = 60
COUNTIES_KEY = "programme-counties"
COUNTIES_SECONDS = 60


def _cache():
    return caches[CACHE]


def _get_many(keys: Iterable[str]) -> dict[str, Any]:
    try:
        return _cache().get_many(keys)
    except Exception as error:  # a cache that does not answer is a cache that is empty
        log.warning("fragments cache unavailable: %s", error)
        return {}


def _set_many(values: dict[str, Any], seconds: int) -> None:
    try:
        _cache().set_many(values, seconds)
    except Exception as error:
        log.warning("fragments cache unavailable: %s", error)


def catalogue_version() -> int:
    """A number that changes whenever a list of places, departments or projects may have."""
    version = _get_many([VERSION_KEY]).get(VERSION_KEY)
    if version is None:
        row = CatalogueVersion.objects.filter(pk=1).values_list("version", flat=True).first()
        version = row or 0
        _set_many({VERSION_KEY: version}, VERSION_SECONDS)
    return version


def counties() -> list[tuple[int, int | None, int | None]]:
    """The county-level regions that have subdistricts, each with its city and province ids:
    what ``models.programme`` asks to know whether a person's programme is every one there is
    (then it filters nothing, and the lists keep walking their own indexes). Cached for a
    minute, and forgotten at once when a subdistrict or a region changes (``counties_changed``;
    other processes without a shared cache within the minute)."""
    found = _get_many([COUNTIES_KEY]).get(COUNTIES_KEY)
    if found is None:
        from .models import Region  # noqa: PLC0415

        found = list(
            Region.objects.filter(level=Region.Level.COUNTY, subdistricts__isnull=False)
            .distinct()
            .values_list("pk", "parent", "parent__parent")
        )
        _set_many({COUNTIES_KEY: found}, COUNTIES_SECONDS)
    return found


def counties_changed(raw: bool = False, **kwargs) -> None:
    """Signal receiver: a subdistrict or a region changed; the list of counties is old, now
    and once the change is committed."""

    def forget() -> None:
        try:
            _cache().delete(COUNTIES_KEY)
        except Exception as error:
            log.warning("fragments cache unavailable: %s", error)

    forget()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(forget)


def catalogue_changed(**kwargs) -> None:
    """Signal receiver: catalogue-dependent entries are old, now and once the change is
    committed."""
    if kwargs.get("action", "post_").startswith("pre_"):
        return  # m2m_changed: only after the rows have changed
    if kwargs.get("raw"):
        return  # loaddata (import_data), which calls this once at its end

    def bump() -> None:
        version = time.time_ns()
        CatalogueVersion.objects.update_or_create(pk=1, defaults={"version": version})
        _set_many({VERSION_KEY: version}, VERSION_SECONDS)

    bump()
    if transaction.get_connection().in_atomic_block:
        # Entries another request builds from the old rows before the commit get the version
        # just set; the second one, after the commit, leaves them behind.
        transaction.on_commit(bump)


def photo_changed(instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """Signal receiver: a photo changed or removed outside a workflow step (the admin) changes
    its issue's card. Photos added by a step need nothing: the step saves the issue."""
    if created or raw or not instance.issue_id:
        return
    Issue.objects.filter(pk=instance.issue_id).update(updated_at=timezone.now())


def _key(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def model_choices(field: ModelChoiceField) -> list[tuple[str, str]]:
    """``field``'s choices (with its empty label first), the rows read once per catalogue
    version and query."""
    queryset: QuerySet = field.queryset
    sql, params = queryset.query.sql_with_params()
    key = f"choices:{_key(queryset.model._meta.label_lower, sql, params, catalogue_version())}"
    rows = _get_many([key]).get(key)
    if rows is None:
        rows = [(str(obj.pk), str(field.label_from_instance(obj))) for obj in queryset]
        _set_many({key: rows}, CHOICES_SECONDS)
    if field.empty_label is None:
        return rows
    return [("", field.empty_label), *rows]


def cached_rows(queryset: QuerySet) -> list[tuple]:
    """A ``values_list`` queryset's rows, read once per catalogue version and query."""
    sql, params = queryset.query.sql_with_params()
    key = f"rows:{_key(queryset.model._meta.label_lower, sql, params, catalogue_version())}"
    rows = _get_many([key]).get(key)
    if rows is None:
        rows = [tuple(row) for row in queryset]
        _set_many({key: rows}, CHOICES_SECONDS)
    return rows


def cached_html(
    parts: tuple, build: Callable[[], str], seconds: int = CHOICES_SECONDS
) -> SafeString:
    """``build()``'s HTML, kept per ``parts``, language and catalogue version."""
    key = f"html:{_key(translation.get_language(), catalogue_version(), parts)}"
    html = _get_many([key]).get(key)
    if html is None:
        html = str(build())
        _set_many({key: html}, seconds)
    return mark_safe(html)


def issue_cards(issues: Sequence, load: Callable[[list[int]], dict[int, Any]]) -> list[SafeString]:
    """The card (``includes/issue_card.html``) of each of ``issues``, in their order.

    ``issues`` need only ``pk`` and ``updated_at``; ``load(pks)`` returns the full rows (with
    what a card shows: project, department, photos) of the cards not in the cache, by pk.
    Project and department names come with the catalogue version.
    """
    if not issues:
        return []
    prefix = f"card:{translation.get_language()}:{catalogue_version()}"
    keys = {issue.pk: f"{prefix}:{issue.pk}:{issue.updated_at.timestamp()}" for issue in issues}
    cards = _get_many(keys.values())
    missing = [pk for pk, key in keys.items() if key not in cards]
    if missing:
        template = get_template("includes/issue_card.html")
        full = load(missing)
        fresh = {keys[pk]: template.render({"issue": full[pk]}) for pk in missing if pk in full}
        _set_many(fresh, CARD_SECONDS)
        cards.update(fresh)
    return [mark_safe(cards[keys[issue.pk]]) for issue in issues if keys[issue.pk] in cards]


def connect_signals(models: Iterable, through: Iterable, photo) -> None:
    for model in models:
        post_save.connect(catalogue_changed, sender=model, dispatch_uid=f"catalogue-save-{model}")
        post_delete.connect(catalogue_changed, sender=model, dispatch_uid=f"catalogue-del-{model}")
    for model in through:
        m2m_changed.connect(catalogue_changed, sender=model, dispatch_uid=f"catalogue-m2m-{model}")
    post_save.connect(photo_changed, sender=photo, dispatch_uid="fragments-photo-save")
    post_delete.connect(photo_changed, sender=photo, dispatch_uid="fragments-photo-delete")
