"""The API's own OpenAPI document, exercised by schemathesis against the app served on
127.0.0.1 (pytest-django's ``live_server``) with the demo data.

Every operation gets schema-valid (positive) and schema-breaking (negative) examples, sent with
the key of a supervisor (``jiandu06``) and of the bureau (``zhujianju``); operations on one object
also get the id of a real one, so that the steps and detail pages are reached, not only 404.
The run must show no server error and no response that breaks its own schema (status code,
content type, headers, body). Run with ``-s`` to see the figures.
"""

from collections import Counter

import hypothesis
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from api.tokens import create_token
from supervision.models import ExtensionRequest, Issue, Notification, Project

EXAMPLES = 6  # per operation, mode and key
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


STATUSES: Counter[int] = Counter()


def real_ids(user) -> dict[str, int]:
    """An object of each kind the user may reach, for the operations' path parameters."""
    issue = Issue.objects.filter(reporter=user).first() or Issue.objects.first()
    ids = {"issue_id": issue.pk, "project_id": Project.objects.first().pk}
    notification = Notification.objects.filter(recipient=user).first()
    if notification:
        ids["notification_id"] = notification.pk
    extension = ExtensionRequest.objects.first()
    if extension:
        ids["extension_id"] = extension.pk
    return ids


def exercise(strategy, base_url: str, headers: dict, label: str, failures, samples) -> int:
    """Send the examples of one strategy; count them, and record what the checks refuse."""
    sent = 0

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        nonlocal sent
        sent += 1
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            STATUSES[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as error:
            failures[label] += 1
            samples.setdefault(label, str(error)[:2000])

    run()
    return sent


def test_openapi_document_holds_against_the_running_app(demo, live_server, settings):
    settings.API_RATE_LIMIT = 100_000
    settings.ALLOWED_HOSTS = ["*"]
    cache.clear()
    # NUL included: the site-wide middleware refuses it with the API's own error shape.
    config = schemathesis.config.SchemathesisConfig.from_dict({"generation": {"allow-x00": True}})
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json", config=config)
    keys = {}
    for username in ("jiandu06", "zhujianju"):
        user = User.objects.get(username=username)
        keys[username] = (create_token(user, "schemathesis")[1], real_ids(user))

    operations = [result.ok() for result in schema.get_all_operations()]
    examples = 0
    failures: Counter[str] = Counter()
    samples: dict[str, str] = {}

    for operation in operations:
        params = {p.name for p in operation.path_parameters}
        for username, (key, ids) in keys.items():
            headers = {"Authorization": f"Bearer {key}"}
            fixed = {name: ids[name] for name in params if name in ids}
            runs = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
            if fixed:
                runs.append((GenerationMode.POSITIVE, fixed))
            for mode, path_parameters in runs:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters
                )

                label = f"{operation.label} [{username}, {mode}]"
                examples += exercise(strategy, live_server.url, headers, label, failures, samples)

    summary = (
        f"schemathesis: operations={len(operations)} examples={examples} "
        f"failures={sum(failures.values())}"
    )
    print(f"\n{summary}")
    print("schemathesis: responses by status", dict(sorted(STATUSES.items())))
    for label, text in samples.items():
        print(f"--- {label}\n{text}")
    assert examples > len(operations) * 10
    assert STATUSES[200] > len(operations), "the examples reach real objects, not only errors"
    assert not failures, summary
