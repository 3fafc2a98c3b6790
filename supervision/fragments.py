"""HTML and choice lists that many requests show unchanged, built once and kept in the cache.

Three things are kept:

- **the options of the list filters** (projects, subdistricts, departments): they change a few
  times a year, yet building them read and rendered about a hundred rows on every view of the
  issue list;
- **the issue list's filter form** as each person sees it (their own projects are among the
  options), for each combination of filters;
- **each issue's card**, under a key holding the issue's ``updated_at`` (every workflow step saves
  it, see ``services._record``), so a card changes the moment its issue does. Its clock words
  (「3 小时前」, 「已超期」) are kept for a minute at most.

Both keys also hold the *catalogue version*, which every save or deletion of a subdistrict,
department, neighbourhood or project (and every change of who works on a project) replaces, so
a renamed project shows its new name at once. Bulk changes that send no signals (the demo
loader, ``generate_scale``) are caught up by the entries' own lifetimes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.forms import ModelChoiceField
from django.template.loader import get_template
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe

CATALOG_KEY = "catalog-version"
CHOICES_SECONDS = 3600
CARD_SECONDS = 60


def catalog_version() -> int:
    """A number that changes whenever a list of places or departments may have changed."""
    version = cache.get(CATALOG_KEY)
    if version is None:
        # After a cache flush the new value is unlike any earlier one: no old entry matches it.
        cache.add(CATALOG_KEY, time.time_ns(), None)
        version = cache.get(CATALOG_KEY, 0)
    return version


def catalog_changed(**kwargs) -> None:
    """Signal receiver: every catalogue-dependent entry is out of date."""
    cache.set(CATALOG_KEY, time.time_ns(), None)


def model_choices(field: ModelChoiceField) -> list[tuple[str, str]]:
    """``field``'s choices (with its empty label first), the rows read once per catalogue
    version and query."""
    queryset: QuerySet = field.queryset
    sql, params = queryset.query.sql_with_params()
    digest = hashlib.blake2b(f"{sql}|{params}".encode(), digest_size=12).hexdigest()
    key = f"choices:{queryset.model._meta.label_lower}:{digest}:{catalog_version()}"
    rows = cache.get(key)
    if rows is None:
        rows = [(str(obj.pk), str(field.label_from_instance(obj))) for obj in queryset]
        cache.set(key, rows, CHOICES_SECONDS)
    if field.empty_label is None:
        return rows
    return [("", field.empty_label), *rows]


def cached_html(
    parts: tuple, build: Callable[[], str], seconds: int = CHOICES_SECONDS
) -> SafeString:
    """``build()``'s HTML, kept per ``parts``, language and catalogue version."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()
    key = f"html:{translation.get_language()}:{catalog_version()}:{digest}"
    html = cache.get(key)
    if html is None:
        html = str(build())
        cache.set(key, html, seconds)
    return mark_safe(html)


def issue_cards(issues: Sequence, load: Callable[[list[int]], dict[int, Any]]) -> list[SafeString]:
    """The card (``includes/issue_card.html``) of each of ``issues``, in their order.

    ``issues`` need only ``pk`` and ``updated_at``; ``load(pks)`` returns the full rows (with
    what a card shows: project, department, photos) of the cards not in the cache, by pk.
    """
    if not issues:
        return []
    prefix = f"card:{translation.get_language()}:{catalog_version()}"
    keys = {issue.pk: f"{prefix}:{issue.pk}:{issue.updated_at.timestamp()}" for issue in issues}
    cards = cache.get_many(keys.values())
    missing = [pk for pk, key in keys.items() if key not in cards]
    if missing:
        template = get_template("includes/issue_card.html")
        full = load(missing)
        fresh = {keys[pk]: template.render({"issue": full[pk]}) for pk in missing if pk in full}
        cache.set_many(fresh, CARD_SECONDS)
        cards.update(fresh)
    return [mark_safe(cards[keys[issue.pk]]) for issue in issues if keys[issue.pk] in cards]


def connect_signals(models: Iterable, through: Iterable) -> None:
    from django.db.models.signals import m2m_changed, post_delete, post_save

    for model in models:
        post_save.connect(catalog_changed, sender=model, dispatch_uid=f"catalog-save-{model}")
        post_delete.connect(catalog_changed, sender=model, dispatch_uid=f"catalog-del-{model}")
    for model in through:
        m2m_changed.connect(catalog_changed, sender=model, dispatch_uid=f"catalog-m2m-{model}")
