"""Word search (supervision/search.py): Chinese words of two and three characters, reference
numbers and descriptions are found, the best first, only among what the viewer may see; the
index follows every change to an issue. Runs on SQLite and on PostgreSQL (DATABASE_URL=…)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.utils import timezone

from supervision import search
from supervision.models import Issue

from .factories import make_user

ISSUES = "/issues/"
PANEL = "/panel/supervision/issue/"


def found(client, words: str, **params) -> list[int]:
    """The issues the list shows for ``words``, in its order."""
    response = client.get(ISSUES, {"q": words, **params})
    assert response.status_code == 200
    return [issue.pk for issue in response.context["page"]]


def count_shown(client, words: str) -> str:
    page = client.get(ISSUES, {"q": words}).content.decode()
    return re.search(r"(共 \d+ 个问题|超过 \d+ 个问题)", page)[1]


def panel_found(client, words: str) -> list[int]:
    response = client.get(PANEL, {"q": words})
    assert response.status_code == 200
    return [issue.pk for issue in response.context["cl"].result_list]


def age(issue: Issue, days: int) -> Issue:
    """File ``issue`` ``days`` ago (newest first is by the time of filing)."""
    Issue.objects.filter(pk=issue.pk).update(created_at=timezone.now() - timedelta(days=days))
    return issue


# --- what the text is cut into -------------------------------------------------------------------


def test_text_is_cut_into_pairs_of_characters_and_whole_latin_words():
    assert search.tokens("楼顶漏水") == ["楼顶", "顶漏", "漏水", "水"]
    assert search.tokens("2023-00042") == ["2023", "00042", "42"]
    assert search.tokens("3号楼，ＡＢ单元") == ["3", "号楼", "楼", "ab", "单元", "元"]
    assert search.tokens("") == []


def test_a_search_asks_for_every_pair_and_a_lone_character_as_a_prefix():
    assert search.terms("脚手架") == [search.Term("脚手"), search.Term("手架")]
    assert search.terms("漏 水") == [search.Term("漏", prefix=True), search.Term("水", prefix=True)]
    assert search.terms("2023-00042") == [search.Term("2023"), search.Term("00042")]
    assert search.terms("，。！？ -- ") == []


def test_a_word_of_letters_still_being_typed_is_a_prefix_a_number_is_whole():
    assert search.terms("alert sc") == [search.Term("alert"), search.Term("sc", prefix=True)]
    assert search.terms("sc alert") == [search.Term("sc"), search.Term("alert", prefix=True)]
    assert search.terms("2026-2") == [search.Term("2026"), search.Term("2")]


def test_postgres_cuts_text_as_python_does(db, on_postgres):
    samples = ["楼顶漏水", "2023-00042", "3号楼，ＡＢ单元 东侧脚手架", "x", "", "𠀀𠀁 ok 007"]
    with connection.cursor() as cursor:
        for text in samples:
            cursor.execute("SELECT supervision_search_tokens(%s)", [text])
            assert cursor.fetchone()[0] == search.tokens(text), text


# --- found --------------------------------------------------------------------------------------


@pytest.fixture
def three(world):
    leak = world.submit(title="3号楼顶层漏水", description="雨后顶层住户家中漏水。")
    fence = world.submit(title="施工围挡倒塌", description="东门围挡被风吹倒。")
    scaffold = world.submit(title="脚手架未挂安全网", description="北侧脚手架下方有行人。")
    return leak, fence, scaffold


def test_two_and_three_character_words_are_found(world, client, three):
    leak, fence, scaffold = three
    client.force_login(world.alice)
    assert found(client, "漏水") == [leak.pk]
    assert found(client, "围挡") == [fence.pk]
    assert found(client, "脚手架") == [scaffold.pk]
    assert found(client, "吹倒") == [fence.pk]  # in the description only
    assert found(client, "漏水 顶层") == [leak.pk]  # every word
    assert found(client, "漏水 围挡") == []
    assert found(client, "手脚") == []  # the characters, but not together


def test_the_index_finds_what_reading_every_issue_finds(world):
    """Every pair of characters asked for is in the text, whatever the punctuation around it."""
    texts = [
        ("3号楼顶层漏水", "雨后顶层住户家中漏水，墙面发霉。"),
        ("施工围挡倒塌", "东门围挡被风吹倒，影响通行。"),
        ("脚手架未挂安全网", "北侧脚手架下方有行人经过！"),
        ("楼道墙面开裂", "粉刷后墙面多处开裂（3处）。"),
        ("雨水井堵塞", "下雨时路面积水、雨水井堵塞严重"),
        ("漏水", "水漏了"),
        ("围挡破损未修复", "围、挡：分开写的字"),
    ]
    issues = [world.submit(title=title, description=text) for title, text in texts]
    queries = [
        "漏水",
        "围挡",
        "脚手架",
        "墙面开裂",
        "雨水井",
        "水",
        "漏",
        "挡",
        "顶层 漏水",
        "开裂。",
    ]
    for words in queries:
        wanted = [term.text for term in search.terms(words)]
        expected = {
            issue.pk
            for issue in issues
            if all(t in f"{issue.reference} {issue.title} {issue.description}" for t in wanted)
        }
        assert set(search.matching(Issue.objects.all(), words).values_list("pk", flat=True)) == (
            expected
        ), words
        assert {row[0] for row in search.ranked(Issue.objects.all(), words).rows} == expected


def test_a_reference_number_is_found_whole_or_by_its_number(world, client, three):
    leak, fence, scaffold = three
    client.force_login(world.alice)
    year, number = fence.reference.split("-")
    assert found(client, fence.reference) == [fence.pk]
    assert found(client, number) == [fence.pk]
    assert found(client, str(int(number))) == [fence.pk]
    assert found(client, f"{year}-99999") == []


def test_one_character_or_only_punctuation_answers_sensibly(world, client, three):
    leak, fence, scaffold = three
    client.force_login(world.alice)
    assert found(client, "挡") == [fence.pk]
    assert set(found(client, "顶")) == {leak.pk}
    assert found(client, "，。！") == []
    assert count_shown(client, "，。！") == "共 0 个问题"
    assert found(client, "'\"*) OR (") == []  # nothing in it reaches the index's syntax


def test_the_title_first_then_more_of_the_words_in_it_then_the_newest(world, client):
    in_title_old = age(world.submit(title="外墙漏水", description="北面。"), 9)
    in_title_new = age(world.submit(title="外墙漏水严重", description="南面。"), 5)
    part_title = age(world.submit(title="外墙开裂", description="外墙漏水，墙皮脱落。"), 3)
    in_text = age(world.submit(title="楼道灯不亮", description="隔壁外墙漏水。"), 1)
    world.submit(title="外墙开裂", description="没有那个词。")
    client.force_login(world.alice)
    assert found(client, "外墙漏水") == [
        in_title_new.pk,
        in_title_old.pk,
        part_title.pk,
        in_text.pk,
    ]
    assert found(client, "漏水") == [in_title_new.pk, in_title_old.pk, in_text.pk, part_title.pk]


def test_ranked_results_come_in_pages(world, client):
    issues = [age(world.submit(title=f"渗水 {n}"), n) for n in range(25)]
    client.force_login(world.alice)
    first = client.get(ISSUES, {"q": "渗水"})
    assert [i.pk for i in first.context["page"]] == [i.pk for i in issues[:20]]
    assert "共 25 个问题" in first.content.decode()
    older = first.context["page"].older
    second = client.get(ISSUES, {"q": "渗水", "before": older})
    assert [i.pk for i in second.context["page"]] == [i.pk for i in issues[20:]]
    back = client.get(ISSUES, {"q": "渗水", "after": second.context["page"].newer})
    assert [i.pk for i in back.context["page"]] == [i.pk for i in issues[:20]]


def test_among_many_a_title_is_not_lost_behind_newer_descriptions(world, client, monkeypatch):
    """Past ``COUNT_CAP`` matches among more than ``FEW`` issues (here 3 and 0, at province
    scale 1,000 and 10,000), the list ranks the newest matches and the title matches."""
    monkeypatch.setattr(search, "FEW", 0)
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    in_title = age(world.submit(title="屋顶漏水", description="顶层。"), 30)
    in_text = [world.submit(title="楼道", description=f"{n}楼漏水。") for n in range(5)]
    other = world.submit(title="围挡", description="倒了。")
    client.force_login(world.alice)
    response = client.get(ISSUES, {"q": "漏水"})
    newest = [in_text[4].pk, in_text[3].pk]
    assert [i.pk for i in response.context["page"]] == [in_title.pk, *newest]
    assert "超过 3 个问题" in response.content.decode()
    assert found(client, "围挡") == [other.pk]
    client.force_login(world.other_staff)  # none of them is the 玉海 office's
    assert found(client, "漏水") == []


def test_the_words_stay_in_their_box_and_only_there(world, client, three):
    client.force_login(world.alice)
    client.get(ISSUES, {"status": "submitted"})  # the form without words, now kept
    page = client.get(ISSUES, {"status": "submitted", "q": "<漏水>"}).content.decode()
    assert 'name="q" value="&lt;漏水&gt;"' in page
    assert 'value="submitted" selected' in page
    again = client.get(ISSUES, {"status": "submitted"}).content.decode()
    assert "漏水&gt;" not in again


def test_words_combine_with_the_other_filters(world, client, three):
    leak, fence, scaffold = three
    other = world.submit(reporter=world.bob, project=world.other_project, title="楼顶漏水")
    client.force_login(world.alice)
    assert set(found(client, "漏水")) == {leak.pk, other.pk}
    assert found(client, "漏水", project=world.other_project.pk) == [other.pk]
    assert found(client, "漏水", mine="on") == [leak.pk]


# --- only what the viewer may see ---------------------------------------------------------------


@pytest.fixture
def private_and_public(world):
    """Alice's issues on the 安阳 project (the 安阳 office's), one of them made public; Bob's on
    玉海 (the 玉海 office's)."""
    mine = [world.submit(title=f"地下室漏水 {n}") for n in range(3)]
    public = world.issue_in(Issue.Status.CLOSED, title="车库漏水")
    Issue.objects.filter(pk=public.pk).update(is_public=True)
    bobs = world.submit(reporter=world.bob, project=world.other_project, title="屋面漏水")
    return mine, public, bobs


def test_search_finds_only_what_each_viewer_may_see(world, client, private_and_public):
    mine, public, bobs = private_and_public
    everything = {issue.pk for issue in [*mine, public, bobs]}
    resident = make_user("resident")  # no role: public issues only
    cases = [
        (world.alice, everything),  # the group is transparent to supervisors
        (world.bureau, everything),
        (world.handler, {issue.pk for issue in [*mine, public]}),
        (world.other_staff, {bobs.pk}),
        (world.builder, {public.pk}),  # dispatched to its company
        (resident, {public.pk}),
    ]
    for user, visible in cases:
        client.force_login(user)
        assert set(found(client, "漏水")) == visible, user
        assert count_shown(client, "漏水") == f"共 {len(visible)} 个问题", user
        for issue in [*mine, public, bobs]:
            shown = found(client, issue.reference)
            assert shown == ([issue.pk] if issue.pk in visible else []), (user, issue)
        ranked = search.ranked(Issue.objects.visible_to(user), "漏水")
        assert {row[0] for row in ranked.rows} == visible, user


def test_the_panel_finds_only_the_departments_issues(world, client, private_and_public):
    mine, public, bobs = private_and_public
    client.force_login(world.other_staff)
    assert panel_found(client, "漏水") == [bobs.pk]
    assert panel_found(client, mine[0].reference) == []
    page = client.get(PANEL, {"q": "漏水"}).content.decode()
    assert "找到 1 条" in page and "共 1 个问题" in page
    client.force_login(world.bureau)
    assert set(panel_found(client, "漏水")) == {issue.pk for issue in [*mine, public, bobs]}
    assert set(panel_found(client, "地下室 漏水")) == {issue.pk for issue in mine}
    assert panel_found(client, "玉海楼") == [bobs.pk]  # a project's name


# --- the index follows every change --------------------------------------------------------------


def test_a_new_issue_is_found_at_once(world, client):
    client.force_login(world.alice)
    assert found(client, "井盖") == []
    issue = world.submit(title="井盖松动", description="车辆经过时响。")
    assert found(client, "井盖") == [issue.pk]
    assert found(client, "车辆") == [issue.pk]


def test_an_edited_title_or_description_is_found_by_its_new_words(world, client, three):
    leak, fence, scaffold = three
    client.force_login(world.alice)
    leak.title = "窗台渗水"
    leak.save(update_fields=["title"])
    assert found(client, "渗水") == [leak.pk]
    assert found(client, "顶层漏水") == []  # the old title's words are gone
    assert found(client, "漏水") == [leak.pk]  # still in the description
    Issue.objects.filter(pk=fence.pk).update(description="已恢复原状。")
    assert found(client, "吹倒") == []
    assert found(client, "恢复") == [fence.pk]
    leak.status = Issue.Status.ACCEPTED  # a change elsewhere leaves the index as it was
    leak.save()
    assert found(client, "渗水") == [leak.pk]


def test_a_deleted_issue_is_not_found(world, client, three):
    leak, fence, scaffold = three
    Issue.objects.filter(pk=leak.pk).delete()
    client.force_login(world.alice)
    assert found(client, "漏水") == []
    assert found(client, "围挡") == [fence.pk]


def test_the_index_can_be_rebuilt(world, client, three):
    leak, fence, scaffold = three
    call_command("rebuild_search", stdout=None)
    client.force_login(world.alice)
    assert found(client, "漏水") == [leak.pk]
    assert found(client, "脚手架") == [scaffold.pk]


def test_triggers_dropped_by_a_table_rebuild_come_back_after_migrate(world, client, three):
    """Django rebuilds a SQLite table to alter it, and its triggers go with it."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    leak, fence, scaffold = three
    with connection.cursor() as cursor:
        for name in search.SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {name}")
    Issue.objects.filter(pk=leak.pk).update(title="窗台渗水")  # missed while they are gone
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # as migrate ends
    client.force_login(world.alice)
    assert found(client, "渗水") == [leak.pk]
    fence.title = "围挡已修复"
    fence.save(update_fields=["title"])
    assert found(client, "修复") == [fence.pk]


def test_the_search_box_sits_above_the_filters_and_keeps_them(world, client, three):
    """On a phone the words go in a box at the top; the 筛选 panel stays shut unless another
    filter is set, so the results are right below; a search keeps the other filters."""
    leak, fence, scaffold = three
    client.force_login(world.alice)
    page = client.get(ISSUES, {"q": "围挡"}).content.decode()
    box = re.search(r'<form method="get" role="search".*?</form>', page, re.S)[0]
    assert 'name="q" value="围挡"' in box and 'type="hidden"' not in box
    assert '<details class="mb-3">' in page  # shut
    filtered = client.get(ISSUES, {"q": "围挡", "status": fence.status}).content.decode()
    box = re.search(r'<form method="get" role="search".*?</form>', filtered, re.S)[0]
    assert f'<input type="hidden" name="status" value="{fence.status}">' in box
    assert '<details class="mb-3" open>' in filtered
