import pytest
from django.core.cache import cache


@pytest.mark.parametrize("role", ["handler", "bureau"])
def test_probe(world, client, role):
    client.raise_request_exception = False
    cache.clear()
    client.force_login(getattr(world, role))
    urls = [
        ("/panel/supervision/issue/", {"q": "\x00"}),
        ("/panel/supervision/issue/", {"q": "a\x00b"}),
        ("/panel/supervision/issue/", {"status__exact": "\x00"}),
        ("/panel/supervision/issue/", {"category__exact": "a\x00"}),
        ("/panel/supervision/issue/", {"urgency__exact": "\x00"}),
        ("/panel/supervision/project/", {"q": "\x00"}),
        ("/panel/supervision/project/", {"status__exact": "\x00"}),
        ("/panel/supervision/supervisor/", {"q": "\x00"}),
        ("/panel/supervision/extensionrequest/", {"status__exact": "\x00"}),
        ("/panel/supervision/consultation/", {"q": "\x00"}),
        ("/panel/supervision/responsetemplate/", {"q": "\x00"}),
        ("/panel/supervision/department/", {"kind__exact": "\x00"}),
        ("/panel/supervision/delivery/", {"status__exact": "\x00", "channel__exact": "\x00"}),
        ("/panel/supervision/routingrule/", {"category__exact": "\x00"}),
        ("/panel/autocomplete/", {"app_label": "supervision", "model_name": "extensionrequest", "field_name": "issue", "term": "\x00"}),
        ("/issues/", {"q": "\x00", "status": "\x00"}),
        ("/projects/", {"q": "\x00", "status": "\x00"}),
        ("/consultations/1/", {"code": "\x00"}),
        ("/patrols/", {"project": "\x00", "mine": "\x00"}),
        ("/dashboard/", {"preset": "\x00"}),
        ("/digest/", {"date": "\x00"}),
        ("/panel/r/\x00/1/", {}),
        ("/admin/supervision/issue/", {"q": "\x00"}),
    ]
    for url, q in urls:
        r = client.get(url, q)
        print(role, url, q, r.status_code)
    r = client.post("/accounts/login/", {"username": "\x00", "password": "x"})
    print("login", r.status_code)
    client.logout()
    r = client.post("/accounts/login/", {"username": "a\x00", "password": "x"})
    print("login anon", r.status_code)
