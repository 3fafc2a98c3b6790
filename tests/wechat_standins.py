"""A stand-in for WeChat (微信公众号) on 127.0.0.1: the authorize page, the code exchange, the
access token and template messages, as documented. Never the real hosts.

``WeChatStandIn(openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M")`` as a context manager; ``url`` is both
``WECHAT_OPEN_URL`` and ``WECHAT_API_URL``.

- ``GET /connect/oauth2/authorize?…`` answers 302 to ``redirect_uri?code=…&state=…`` for the
  stand-in's current ``openid`` (as WeChat does, silently, for ``snsapi_base``); with
  ``cancel = True`` it comes back with the state and no code, as after a refusal.
- ``GET /sns/oauth2/access_token`` trades a code (once) for ``{openid, access_token, …}``, else
  ``{"errcode": 40029, "errmsg": "invalid code"}``.
- ``GET /cgi-bin/token`` gives an access token (``tokens_issued`` counts them).
- ``POST /cgi-bin/message/template/send`` records the message; ``send_script`` lists answers to
  give first, in order: an int is an HTTP status (500), a str an ``errcode`` (``"45009"``).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

APP_ID = "wx-standin-appid"
APP_SECRET = "standin-secret"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict


class WeChatStandIn:
    def __init__(self, openid: str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M") -> None:
        self.openid = openid
        self.cancel = False
        self.send_script: list[int | str] = []
        self.calls: list[Call] = []
        self.sent: list[dict] = []
        self.codes: dict[str, str] = {}
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                stand_in._handle(self)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> WeChatStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def configure(self, settings, template: bool = True) -> None:
        """Point a pytest-django ``settings`` at this stand-in."""
        settings.WECHAT_APP_ID = APP_ID
        settings.WECHAT_APP_SECRET = APP_SECRET
        settings.WECHAT_TEMPLATE_ID = "TPL-standin-0001" if template else ""
        settings.WECHAT_OPEN_URL = self.url
        settings.WECHAT_API_URL = self.url
        settings.WECHAT_TIMEOUT = 2

    def paths(self) -> list[str]:
        return [call.path for call in self.calls]

    # --- the protocol ----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"unreadable": True}
        with self.lock:
            self.calls.append(Call(handler.command, parts.path, query, body))
            status, headers, answer = self._answer(parts.path, query, body)
        data = json.dumps(answer, ensure_ascii=False).encode() if answer is not None else b""
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _answer(self, path: str, query: dict[str, str], body: dict):
        if path == "/connect/oauth2/authorize":
            if query.get("appid") != APP_ID or query.get("scope") != "snsapi_base":
                return 400, {}, {"errcode": 10003, "errmsg": "redirect_uri or appid wrong"}
            back = {"state": query.get("state", "")}
            if not self.cancel:
                code = secrets.token_hex(16)
                self.codes[code] = self.openid
                back = {"code": code} | back
            sep = "&" if "?" in query["redirect_uri"] else "?"
            return 302, {"Location": f"{query['redirect_uri']}{sep}{urlencode(back)}"}, None
        if path == "/sns/oauth2/access_token":
            good = query.get("appid") == APP_ID and query.get("secret") == APP_SECRET
            openid = self.codes.pop(query.get("code", ""), None)
            if not good or openid is None or query.get("grant_type") != "authorization_code":
                return 200, {}, {"errcode": 40029, "errmsg": "invalid code"}
            return (
                200,
                {},
                {
                    "access_token": secrets.token_hex(20),
                    "expires_in": 7200,
                    "refresh_token": secrets.token_hex(20),
                    "openid": openid,
                    "scope": "snsapi_base",
                },
            )
        if path == "/cgi-bin/token":
            if query.get("appid") != APP_ID or query.get("secret") != APP_SECRET:
                return 200, {}, {"errcode": 40013, "errmsg": "invalid appid"}
            token = secrets.token_hex(20)
            self.tokens.add(token)
            self.tokens_issued += 1
            return 200, {}, {"access_token": token, "expires_in": 7200}
        if path == "/cgi-bin/message/template/send":
            if query.get("access_token") not in self.tokens:
                return 200, {}, {"errcode": 40001, "errmsg": "invalid credential"}
            if self.send_script:
                step = self.send_script.pop(0)
                if isinstance(step, int):
                    return step, {}, {"errcode": -1, "errmsg": "system error"}
                return 200, {}, {"errcode": int(step), "errmsg": "refused"}
            self.sent.append(body)
            return 200, {}, {"errcode": 0, "errmsg": "ok", "msgid": 200228332}
        return 404, {}, {"errcode": 404, "errmsg": "no such endpoint"}
