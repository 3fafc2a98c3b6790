"""Stand-ins for the SMS providers on 127.0.0.1: small HTTP servers that answer Aliyun's and
Tencent Cloud's ``SendSms`` as their official SDKs expect, and record each request so a test can
read the code that was sent. Never the real hosts.

``StandIn("aliyun")`` / ``StandIn("tencent")`` as a context manager; ``mode`` is ``"ok"``,
``"error"`` (HTTP 500 with the provider's error JSON), ``"refuse"`` (HTTP 200 with a business
error, e.g. flow control) or ``"slow"`` (answers after ``delay`` seconds: a timeout).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Sent:
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]  # Aliyun: query string and form body; Tencent: the JSON body
    body: dict = field(default_factory=dict)

    @property
    def action(self) -> str:
        return self.headers.get("x-acs-action") or self.headers.get("x-tc-action") or ""


class StandIn:
    def __init__(self, protocol: str, mode: str = "ok", delay: float = 3.0) -> None:
        assert protocol in {"aliyun", "tencent"}
        self.protocol, self.mode, self.delay = protocol, mode, delay
        self.requests: list[Sent] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                stand_in._handle(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what was sent ---------------------------------------------------------------------

    def numbers(self) -> list[str]:
        return [self._number(sent) for sent in self.requests]

    def last_code(self) -> str:
        sent = self.requests[-1]
        if self.protocol == "aliyun":
            return json.loads(sent.params["TemplateParam"])["code"]
        return sent.body["TemplateParamSet"][0]

    def _number(self, sent: Sent) -> str:
        if self.protocol == "aliyun":
            return sent.params["PhoneNumbers"]
        return sent.body["PhoneNumberSet"][0].removeprefix("+86")

    # --- the protocol ----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        query = {k: v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        body: dict = {}
        if raw and "json" in headers.get("content-type", ""):
            body = json.loads(raw)
        elif raw:
            query.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        self.requests.append(
            Sent(handler.command, urlsplit(handler.path).path, headers, query | body, body)
        )
        if self.mode == "slow":
            time.sleep(self.delay)
        status, answer = (self._aliyun if self.protocol == "aliyun" else self._tencent)(headers)
        data = json.dumps(answer).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json;charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _aliyun(self, headers: dict[str, str]) -> tuple[int, dict]:
        request_id = str(uuid.uuid4()).upper()
        if headers.get("x-acs-action") != "SendSms" or "authorization" not in headers:
            return 400, {"Code": "MissingAction", "Message": "not SendSms", "RequestId": request_id}
        if self.mode == "error":
            return 500, {
                "Code": "InternalError",
                "Message": "The request processing has failed due to some unknown error.",
                "RequestId": request_id,
            }
        if self.mode == "refuse":
            return 200, {
                "Code": "isv.BUSINESS_LIMIT_CONTROL",
                "Message": "触发分钟级流控Permits:1",
                "RequestId": request_id,
            }
        return 200, {
            "Code": "OK",
            "Message": "OK",
            "BizId": "9006197469364984400",
            "RequestId": request_id,
        }

    def _tencent(self, headers: dict[str, str]) -> tuple[int, dict]:
        request_id = str(uuid.uuid4())
        if headers.get("x-tc-action") != "SendSms" or "authorization" not in headers:
            error = {"Code": "InvalidAction", "Message": "not SendSms"}
            return 400, {"Response": {"Error": error, "RequestId": request_id}}
        if self.mode == "error":
            error = {"Code": "InternalError", "Message": "内部错误。"}
            return 500, {"Response": {"Error": error, "RequestId": request_id}}
        number = self.requests[-1].body["PhoneNumberSet"][0]
        code, message = (
            (
                "LimitExceeded.PhoneNumberThirtySecondLimit",
                "单个手机号30秒内下发短信条数超过设定的上限",
            )
            if self.mode == "refuse"
            else ("Ok", "send success")
        )
        status = {
            "SerialNo": "5000:1045710669157053657849499619",
            "PhoneNumber": number,
            "Fee": 1,
            "SessionContext": "",
            "Code": code,
            "Message": message,
            "IsoCode": "CN",
        }
        return 200, {"Response": {"SendStatusSet": [status], "RequestId": request_id}}
