"""The database's check constraints agree with the choices in the code: adding a choice to a
``TextChoices`` without its constraint would make every insert of it fail in production."""

from __future__ import annotations

from django.apps import apps
from django.db import models
from django.db.models import Q


def _allowed_values(condition: Q):
    """``(field, values)`` when the whole condition says "the field is one of these values";
    None for any other condition (a narrower rule, such as "filed letters have an issue")."""
    if condition.negated or condition.connector != Q.AND or len(condition.children) != 1:
        return None
    (child,) = condition.children
    if isinstance(child, Q):
        return _allowed_values(child)
    lookup, values = child
    field = lookup.removesuffix("__in")
    return (field, values) if lookup.endswith("__in") and "__" not in field else None


def choice_constraints():
    """(model, constraint name, field, values allowed by the database, values of its choices)."""
    for label in ("supervision", "accounts", "api"):
        for model in apps.get_app_config(label).get_models():
            for constraint in model._meta.constraints:
                if not isinstance(constraint, models.CheckConstraint):
                    continue
                found = _allowed_values(constraint.condition)
                if found is None:
                    continue
                name, allowed = found
                field = model._meta.get_field(name)
                if field.choices:
                    choices = {str(value) for value, _label in field.flatchoices}
                    yield model, constraint.name, name, {str(v) for v in allowed}, choices


def test_every_choice_constraint_allows_exactly_its_choices():
    found = list(choice_constraints())
    names = {name for _model, name, *_rest in found}
    # The walk must find the constraints it is about, or it would pass by finding nothing.
    assert {
        "supervision_issue_status_valid",
        "supervision_issue_category_valid",
        "supervision_department_kind_valid",
        "supervision_project_status_valid",
    } <= names
    differ = [
        f"{model.__name__}.{field} ({name}): database {sorted(allowed)} ≠ choices {sorted(choices)}"
        for model, name, field, allowed, choices in found
        if allowed != choices
    ]
    assert not differ, "\n".join(differ)
