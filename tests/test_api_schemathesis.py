"""The API's own OpenAPI document, exercised by schemathesis against the app served on
127.0.0.1 (pytest-django's ``live_server``) with the demo data, with every check schemathesis has.

Three runs, each with the key of a supervisor (``jiandu06``) and of the bureau (``zhujianju``):

* fuzzing: every operation gets schema-valid (positive) and schema-breaking (negative) examples;
  operations on one object also get the id of a real one, so that the steps and detail pages are
  reached, not only 404;
* coverage: schemathesis' boundary cases for every operation (values at and past the edges the
  document gives, each required part left out, methods the document does not list);
* stateful: schemathesis' state machine chains operations along the document's links, those it
  declares (the issue a filing or an issue's page returns is the one whose page and steps take
  its id) and those schemathesis infers (an ``id`` in one response is the path id of another
  operation): file an issue, then read it and take its steps; list issues, projects, extensions
  and notifications, then open or act on what was listed. A scenario that starts on one object
  starts on a real one, as in fuzzing; its steps are positive or negative alike.

Every check runs on every response: no server error; status, content type, headers and body as
documented; schema-valid data accepted and schema-breaking data refused; a key required where the
document says so and nowhere else; a missing key refused; an undocumented method answered 405; a
resource just created is there (and one deleted is gone: the API deletes nothing).
``object_level_authorization`` compares identities configured as peers who must not see each
other's objects, which these roles are not (the bureau sees every issue), so it has nothing to
compare here. Run with ``-s`` to see the figures.

What a schema cannot say is which rows exist and may be chosen, which dates today and an issue's
deadline allow, and what bytes make a photo. Like path ids, such values in positive examples come
from the data (``as_the_data_allows``); the document gives their type, range and media type.
"""

import io
from collections import Counter
from contextlib import suppress
from datetime import timedelta
from itertools import cycle

import hypothesis
import schemathesis
from django.core.cache import cache
from django.utils import timezone
from hypothesis import HealthCheck, Phase
from PIL import Image
from schemathesis import APIOperation, Case, Response
from schemathesis.auths import AuthContext, set_on_generated_case
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode

from accounts.models import User
from api.tokens import create_token
from supervision.access import watched_projects
from supervision.models import (
    Department,
    ExtensionRequest,
    Issue,
    Notification,
    Project,
    Region,
    Subdistrict,
    issue_county,
)

EXAMPLES = 6  # per operation, mode and key
STATEFUL_SCENARIOS = 30  # per key, each of up to STATEFUL_STEPS calls
STATEFUL_STEPS = 10

load_all_checks()  # the Open API checks register themselves when their module is imported
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

STATUSES: Counter[int] = Counter()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


PHOTO = jpeg()


def real_ids(user: User) -> dict[str, int]:
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


def as_the_data_allows(case: Case, user: User) -> None:
    """A positive example made valid where the document cannot say what is: the rows it names
    exist and this user may choose them for this issue, its dates fall where today and the issue's
    deadline allow, its photos are images. Only the values the example has are replaced (in
    place, so that schemathesis keeps its label); negative examples are sent as made."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    path = case.operation.path.removeprefix("/api/v1")
    today = timezone.localdate()
    values = {}
    if path == "/projects":
        values = {
            "subdistrict": Subdistrict.objects.first().pk,
            "year": Project.objects.first().year,
        }
    elif path == "/issues" and case.method == "GET":
        # The choices of the person's own county (the demo has a second one, 乐清).
        county = user.region_id or Region.objects.ruian().pk
        values = {
            "project": Project.objects.filter(neighbourhood__subdistrict__region=county).first().pk,
            "subdistrict": Subdistrict.objects.filter(region=county).first().pk,
            "department": Department.objects.filter(is_active=True, region=county).first().pk,
        }
    elif path == "/issues":
        values = {"project": watched_projects(user).first().pk} if user.is_supervisor else {}
    elif issue := Issue.objects.filter(pk=(case.path_parameters or {}).get("issue_id")).first():
        taken = [pk for pk in (issue.department_id, issue.contractor_id) if pk]
        departments = Department.objects.filter(is_active=True, region=issue_county(issue)).exclude(
            pk__in=taken
        )
        contractor = departments.filter(kind=Department.Kind.CONTRACTOR).first()
        office = departments.exclude(kind=Department.Kind.CONTRACTOR).first()
        due = issue.rectify_due_at and timezone.localtime(issue.rectify_due_at).date()
        values = {
            "/dispatch": {"department": contractor.pk},
            "/transfer": {"department": office.pk},
            "/accept": {"deadline": (today + timedelta(days=30)).isoformat()},
            "/extend": {"until": (max(today, due or today) + timedelta(days=1)).isoformat()},
        }.get(path.removeprefix("/issues/{issue_id}"), {})
    if isinstance(case.body, dict) and isinstance(case.body.get("photos"), list):
        case.body["photos"] = [PHOTO for _ in case.body["photos"]]
    for container in (case.query, case.body):
        if isinstance(container, dict):
            for name, value in values.items():
                if container.get(name) is not None:
                    container[name] = value


class Run:
    """Sends cases with one key, checks each response, and keeps the counts."""

    def __init__(self, base_url: str, user: User, key: str) -> None:
        self.base_url = base_url
        self.user = user
        # The key as schemathesis' own auth for the document's scheme: it then leaves the key out
        # of the negative cases that leave it out on purpose, and knows which requests carry it.
        config = schemathesis.config.SchemathesisConfig.from_dict(
            {
                # NUL included: the document says it is refused everywhere, so both sides are tried.
                "generation": {"allow-x00": True},
                "auth": {"openapi": {"ApiKey": {"bearer": key}}},
            }
        )
        self.schema = schemathesis.openapi.from_url(
            f"{base_url}/api/v1/openapi.json", config=config
        )
        self.sent: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.samples: dict[str, str] = {}

    def send(self, case: Case, phase: str) -> None:
        as_the_data_allows(case, self.user)
        self.sent[phase] += 1
        response = case.call(base_url=self.base_url, timeout=30)
        STATUSES[response.status_code] += 1
        self.check(case, response, phase)

    def check(self, case: Case, response: Response, phase: str, **kwargs) -> None:
        try:
            case.validate_response(response, checks=ALL_CHECKS, **kwargs)
        except (AssertionError, BaseExceptionGroup) as error:
            for failure in getattr(error, "exceptions", [error]):
                check = type(failure).__name__
                name = f"{case.operation.label} {phase} [{self.user.username}] {check}"
                self.failures[name] += 1
                self.samples.setdefault(
                    name,
                    f"{str(failure)[:1500]}\n{case.as_curl_command()[:800]}\n"
                    f"-> {response.status_code} {response.text[:500]}",
                )

    def fuzz(
        self, operation: APIOperation, mode: GenerationMode, path_parameters: dict | None
    ) -> None:
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

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
            self.send(case, "fuzzing")

        run()

    def coverage(self, operation: APIOperation) -> None:
        config = self.schema.config.generation_for(operation=operation, phase="coverage")
        context = AuthContext(operation=operation, app=None)
        for case in self.schema.iter_coverage_cases(
            operation, generation_modes=MODES, generation_config=config
        ):
            set_on_generated_case(case, context, None)  # the key, as the other runs' cases have it
            self.send(case, "coverage")

    def stateful(self) -> None:
        run = self
        # The issues a scenario may start on, in turn: their states differ, so do the steps open.
        issues = cycle(
            Issue.objects.visible_to(self.user).order_by("pk").values_list("pk", flat=True)[:30]
        )
        ids = real_ids(self.user)

        class Workflow(self.schema.as_state_machine()):
            def step(self, input):
                case = input.case
                if input.transition is not None:
                    run.sent["stateful, along a link"] += 1
                elif case.path_parameters and not case.meta.is_negative_at(ParameterLocation.PATH):
                    # A scenario starts on a real object, as the fuzzing run's fixed ids do; its
                    # links carry the ids on from there.
                    start = {**ids, "issue_id": next(issues)}
                    for name in case.path_parameters.keys() & start.keys():
                        case.path_parameters[name] = start[name]
                return super().step(input)

            def get_call_kwargs(self, case) -> dict:
                return {"base_url": run.base_url, "timeout": 30}

            def before_call(self, case) -> None:
                as_the_data_allows(case, run.user)

            def call(self, case, **kwargs):
                run.sent["stateful"] += 1
                response = case.call(**kwargs)
                STATUSES[response.status_code] += 1
                return response

            def validate_response(self, response, case, additional_checks=None, **kwargs):
                # With the scenario's record: the checks on resources created earlier need it.
                run.check(
                    case, response, "stateful", transport_kwargs=kwargs, recorder=self.recorder
                )

        settings = hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        # Each scenario changes the server, so the links open to the next one may differ from what
        # hypothesis saw on the same path before, and it stops there, as schemathesis' own runner
        # ends its stateful phase (every response so far is checked and counted). It starts again
        # on the server as it now is, a few times, for the scenarios it did not get to.
        for _ in range(3):
            with suppress(hypothesis.errors.Flaky):
                Workflow.run(settings=settings)
            if run.sent["stateful"] >= STATEFUL_SCENARIOS * STATEFUL_STEPS:
                break


def test_openapi_document_holds_against_the_running_app(demo, live_server, settings):
    settings.API_RATE_LIMIT = 100_000
    settings.ALLOWED_HOSTS = ["*"]
    cache.clear()
    runs = []
    for username in ("jiandu06", "zhujianju"):
        user = User.objects.get(username=username)
        run = Run(live_server.url, user, create_token(user, "schemathesis")[1])
        operations = [result.ok() for result in run.schema.get_all_operations()]
        ids = real_ids(user)
        for operation in operations:
            params = {p.name for p in operation.path_parameters}
            fixed = {name: ids[name] for name in params if name in ids}
            for mode in MODES:
                run.fuzz(operation, mode, None)
            if fixed:
                run.fuzz(operation, GenerationMode.POSITIVE, fixed)
            run.coverage(operation)
        run.stateful()
        runs.append(run)

    sent = sum((run.sent for run in runs), Counter())
    examples = sent["fuzzing"] + sent["coverage"] + sent["stateful"]
    failures = sum((run.failures for run in runs), Counter())
    summary = (
        f"schemathesis: operations={len(operations)} checks={len(ALL_CHECKS)} "
        f"examples={examples} failures={sum(failures.values())}"
    )
    print(f"\n{summary}")
    print("schemathesis: examples by run", dict(sent))
    print("schemathesis: responses by status", dict(sorted(STATUSES.items())))
    for run in runs:
        for label, text in run.samples.items():
            print(f"--- {label} x{run.failures[label]}\n{text}")
    assert examples > len(operations) * 10
    assert STATUSES[200] > len(operations), "the examples reach real objects, not only errors"
    assert sent["stateful, along a link"], "the stateful run follows the document's links"
    assert not failures, summary
