"""After the works, in a real browser (issue 19): the bureau schedules the 竣工验收 at a desk
(1366 px); two supervisors and three residents' representatives record their views on their phones
in WeChat (375 px), one reservation becomes a 「验收遗留」 issue; the A4 record shows the tally and
the QR; households answer the 满意度调查 with the codes on their notices, one wrong code is refused
in Chinese, and at 320 px nothing is cut off. Screenshots go to ``screenshots/``."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Locator, expect

from supervision.models import (
    Acceptance,
    AcceptanceView,
    Issue,
    Project,
    Survey,
    SurveyAnswer,
)

from .factories import PASSWORD
from .test_acceptance import finished_project
from .test_browser import WECHAT_ANDROID, shot
from .test_surveys import accept, households_for

pytestmark = pytest.mark.browser


class Taps:
    """A person's taps on a phone (typing into a box counts as the tap that focuses it) and the
    screens they go through."""

    def __init__(self, page):
        self.page, self.count, self.screens = page, 0, 0
        page.on("load", self._loaded)

    def _loaded(self, _page) -> None:
        self.screens += 1

    def tap(self, target) -> None:
        self.count += 1
        (self.page.locator(target) if isinstance(target, str) else target).tap()

    def type(self, selector: str, text: str) -> None:
        self.count += 1
        self.page.locator(selector).tap()
        self.page.locator(selector).fill(text)


@pytest.fixture
def phones(browser_instance):
    """Each resident's own phone: WeChat's browser on Android, in Chinese."""
    contexts = []

    def open_page(width: int = 375, height: int = 740):
        context = browser_instance.new_context(
            viewport={"width": width, "height": height},
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            user_agent=WECHAT_ANDROID,
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def desk(browser_instance):
    context = browser_instance.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    yield context.new_page()
    context.close()


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways ({width} px)"


def inside_the_screen(page, selector: str) -> dict:
    box = page.locator(selector).bounding_box()
    assert box, selector
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"], box
    assert box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"], box
    return box


def big_enough_to_tap(page, selector: str) -> None:
    """Each choice is a label at least 44 px high, the whole of it a target."""
    labels = page.locator(selector)
    expect(labels.first).to_be_visible()  # the page a tap opened has loaded
    assert labels.count() >= 2
    for n in range(labels.count()):
        box = labels.nth(n).bounding_box()
        assert box and box["height"] >= 44, (labels.nth(n).inner_text(), box)


def labels_of(questions) -> list:
    """The first question's choices."""
    labels = questions.first.locator("label")
    return [labels.nth(n) for n in range(labels.count())]


def test_the_bureau_schedules_five_people_record_views_and_the_record_prints(
    world, live_server, phones, desk
):
    w, homes, _carol = finished_project(world)
    base = live_server.url
    record = f"{base}/projects/{w.project.pk}/acceptance/"

    # zhujianju, at a desk, schedules it with three representatives.
    log_in(desk, base, "zhujianju")
    desk.goto(record)
    desk.click("[data-schedule]")
    desk.fill("input[name=held_on]", (timezone.localdate() + timedelta(days=3)).isoformat())
    desk.fill("input[name=place]", "兴业大厦小区广场")
    for home in homes[:3]:
        desk.get_by_label(str(home), exact=True).check()
    shot(desk, "after-works-01-schedule", full_page=False)
    desk.click("text=安排验收")
    expect(desk.locator(".alert-success")).to_contain_text("已安排竣工验收")
    acceptance = Acceptance.objects.get()

    # Alice agrees on her phone.
    alice = phones()
    log_in(alice, base, "alice")
    alice.goto(record)
    alice.click("[data-opinion-link]")
    alice.wait_for_url("**/opinion/")
    big_enough_to_tap(alice, "[data-opinion-choices] label")
    alice.click("text=同意验收")
    alice.click("text=提交意见")
    expect(alice.locator(".alert-success")).to_contain_text("意见已记录")

    # Carol has a reservation about the whole neighbourhood, and turns it into an issue.
    carol = phones()
    log_in(carol, base, "carol")
    carol.goto(record)
    carol.click("[data-opinion-link]")
    carol.click("text=有保留意见")
    carol.fill("textarea[name=note]", "小区主干道雨后积水，排水口偏高")
    shot(carol, "after-works-02-supervisor-reservation", full_page=False)
    carol.click("text=提交意见")
    expect(carol.locator(".alert-success")).to_contain_text("意见已记录")
    row = carol.locator("tr", has_text="小区主干道雨后积水")
    row.locator("input[name=deadline]").fill(
        (timezone.localdate() + timedelta(days=10)).isoformat()
    )
    row.locator("text=转为验收遗留问题").click()
    expect(carol.locator(".alert-success")).to_contain_text("验收遗留问题")
    issue = Issue.objects.get(acceptance_view__acceptance=acceptance)
    leftover = carol.locator("[data-leftover]")
    expect(leftover).to_contain_text("验收遗留")
    expect(leftover).to_contain_text(issue.reference)
    leftover.locator("a").click()
    carol.wait_for_url(f"**/issues/{issue.pk}/")
    expect(carol.locator("h1")).to_contain_text("验收遗留")
    place = carol.locator("dt:text-is('位置') + dd").inner_text()
    assert place == "全小区" and "幢" not in place
    shot(carol, "after-works-03-leftover-issue", full_page=False)

    # Three representatives, each on a phone with the code from the notice.
    for n, home in enumerate(homes[:3], start=1):
        page = phones()
        page.goto(record)
        taps = Taps(page)
        taps.tap("[data-sign-link]")
        page.wait_for_url("**/sign/")
        if n == 1:
            big_enough_to_tap(page, "[data-opinion-choices] label")
            no_sideways_scroll(page)
            shot(page, "after-works-04-representative-sign", full_page=False)
        taps.type("input[name=code]", home.code.lower()[:5] + " " + home.code[5:])
        taps.tap("[data-opinion-choices] label:has-text('同意验收')")
        taps.tap("text=提交意见")
        expect(page.locator(".alert-success")).to_contain_text("已记录 3幢1单元 的意见")
        assert (taps.count, taps.screens) == (4, 2), "a representative's view: 4 taps, 2 screens"
    views = AcceptanceView.objects.filter(acceptance=acceptance)
    assert sorted(views.values_list("opinion", flat=True)) == ["agree"] * 4 + ["reservation"]

    # The record: tally and QR; on paper, one A4 page.
    desk.goto(record)
    tally = desk.locator("[data-tally] tbody tr")
    assert tally.nth(0).locator("td").all_inner_texts() == ["3", "3", "0"]
    assert tally.nth(1).locator("td").all_inner_texts() == ["2", "1", "1"]
    qr = desk.locator(".qr-record svg")
    box = qr.bounding_box()
    assert box and box["width"] > 100 and abs(box["width"] - box["height"]) < 2
    drawn = Image.open(io.BytesIO(qr.screenshot())).convert("L")
    dark = sum(drawn.histogram()[:64]) / (drawn.width * drawn.height)
    assert 0.2 < dark < 0.8, f"the QR shows dark modules on white ({dark:.0%} dark)"
    shot(desk, "after-works-05-record")
    desk.emulate_media(media="print")
    shot(desk, "after-works-06-record-print")
    pdf = desk.pdf(format="A4", print_background=True)
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == 1, "the record fits one A4 page"
    desk.emulate_media(media="screen")

    # The bureau closes it: three of three representatives agree, nothing urgent is open.
    desk.click("text=结束验收并得出结论")
    expect(desk.locator("[data-outcome]")).to_have_text("验收通过")
    assert Project.objects.get(pk=w.project.pk).status == Project.Status.ACCEPTED


def test_households_answer_the_survey_and_a_wrong_code_is_refused_at_320_px(
    world, live_server, phones, desk
):
    w, base = world, live_server.url
    accept(w.project)
    homes = households_for(w.project, n=12)

    # zhujianju opens the survey from the project page.
    log_in(desk, base, "zhujianju")
    desk.goto(f"{base}/projects/{w.project.pk}/")
    desk.click("text=发起满意度调查")
    desk.click("text=发起调查")
    survey = Survey.objects.get()
    url = f"{base}/surveys/{survey.pk}/"

    # The smallest phone: the code box fits, a wrong code is refused in view, what was typed
    # stays; then the right code.
    small = phones(width=320, height=640)
    small.goto(url)
    small.fill("#code", "ZZZZ-ZZZZ-ZZZZ")
    shot(small, "after-works-07-survey-320", full_page=False)
    no_sideways_scroll(small)
    box = inside_the_screen(small, "#code")
    assert box["width"] >= 200
    text_width = small.locator("#code").evaluate("e => e.scrollWidth <= e.clientWidth")
    assert text_width, "the whole code shows in the box"
    small.click("button:text-is('去评价')")
    error = small.locator("#code-error")
    expect(error).to_contain_text("不正确")
    inside_the_screen(small, "#code-error")
    assert small.input_value("#code") == "ZZZZ-ZZZZ-ZZZZ"
    no_sideways_scroll(small)
    shot(small, "after-works-08-wrong-code-320", full_page=False)
    assert not SurveyAnswer.objects.exists()

    def answer(page, code: str, choices: list[str], *, name: str = "") -> Taps:
        """Types the code, rates each question and sends: counts the household's taps."""
        taps = Taps(page)
        taps.type("#code", code)
        taps.tap("button:text-is('去评价')")
        expect(page.locator("#answer-heading")).to_contain_text("的评价")
        questions = page.locator("[data-question]")
        assert questions.count() == len(choices)
        if name:
            big_enough_to_tap(page, "[data-question] label")
            rows = {round(box["y"]) for box in map(Locator.bounding_box, labels_of(questions))}
            assert len(rows) == 1, "满意 / 基本满意 / 不满意 on one row"
            no_sideways_scroll(page)
            shot(page, name, full_page=False)
        for n, choice in enumerate(choices):
            taps.tap(questions.nth(n).locator(f"label:text-is('{choice}')"))
        taps.tap("button:text-is('提交评价')")
        expect(page.locator(".alert-success")).to_contain_text("已收到")
        return taps

    taps = answer(
        small,
        homes[0].code,
        ["满意", "满意", "基本满意", "满意"],
        name="after-works-09-survey-form-320",
    )
    assert (taps.count, taps.screens) == (7, 2), "a household's answer: 7 taps, 2 screens"
    no_sideways_scroll(small)

    # Seven more households on 375 px phones (one types its code in small letters).
    rated = [
        ["满意", "满意", "满意", "满意"],
        ["基本满意", "满意", "不满意", "基本满意"],
        ["满意", "基本满意", "满意", "满意"],
        ["满意", "满意", "满意", "基本满意"],
        ["不满意", "基本满意", "不满意", "不满意"],
        ["满意", "满意", "基本满意", "满意"],
        ["基本满意", "基本满意", "满意", "满意"],
    ]
    for n, choices in enumerate(rated, start=1):
        page = phones()
        page.goto(url)
        name = "after-works-10-survey-form-375" if n == 1 else ""
        code = homes[n].code.lower() if n == 1 else homes[n].code
        taps = answer(page, code, choices, name=name)
        assert (taps.count, taps.screens) == (7, 2)
        page.context.close()
    # Alice enters two elderly households' paper forms (代录).
    alice = phones()
    log_in(alice, base, "alice")
    for n, comment in ((8, "楼道扶手装好了，老人上下楼放心"), (9, "")):
        alice.goto(url)
        alice.get_by_role("link", name="代录纸质问卷", exact=True).click()
        alice.select_option("#household", label=str(homes[n]))
        for question in alice.locator("[data-question]").all():
            question.locator("label:text-is('满意')").tap()
        if comment:
            alice.fill("textarea[name=comment]", comment)
            shot(alice, "after-works-11-survey-paper", full_page=False)
        alice.click("text=保存代录问卷")
        expect(alice.locator(".alert-success")).to_contain_text("已代录")
        no_sideways_scroll(alice)
    assert SurveyAnswer.objects.filter(survey=survey).count() == 10
    assert SurveyAnswer.objects.filter(survey=survey, entered_by=w.alice).count() == 2

    # The public results, by area.
    page = phones()
    page.goto(url)
    expect(page.locator("[data-survey-results]")).to_contain_text("参与户数 10 / 12")
    no_sideways_scroll(page)
    shot(page, "after-works-12-survey-results")

    # The bureau's dashboard ranks the project's contractor by the overall answers:
    # 7 satisfied, 2 basically, 1 not: 90 %.
    desk.goto(f"{base}/dashboard/")
    ranking = desk.locator("[data-survey-ranking] table").first
    row = ranking.locator("tbody tr").first
    expect(row.locator("th")).to_have_text(w.project.contractor.name)
    expect(row.locator("td").last).to_have_text("90%")
    shot(desk, "after-works-13-dashboard-ranking")
