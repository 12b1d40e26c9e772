"""A test peer written from the public description of OpenAI's chat-completions API (POST
``/v1/chat/completions``; an answer's ``choices[0].message.tool_calls[].function`` carries a
tool's ``name`` and ``arguments`` as a JSON string; ``usage`` counts tokens). It answers what a
test scripts: a tool call, nothing, garbage, or slowly, and keeps what it was asked. A real
HTTP server on loopback (``http.server``), so the creature's client meets real sockets."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tool_answer(*calls: dict[str, Any], tokens: tuple[int, int] = (120, 30)) -> dict:
    return {
        "id": "chatcmpl-peer",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls" if calls else "stop",
                "message": {
                    "role": "assistant",
                    "content": None if calls else "Nothing to do.",
                    "tool_calls": [
                        {
                            "id": f"call_{i}",
                            "type": "function",
                            "function": {"name": "do_physical_task", "arguments": json.dumps(c)},
                        }
                        for i, c in enumerate(calls)
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]},
    }


@dataclass
class Scripted:
    body: bytes
    delay_s: float = 0.0
    status: int = 200


class OpenAIPeer:
    def __init__(self) -> None:
        self.script: list[Scripted] = []
        self.default = Scripted(json.dumps(tool_answer()).encode())
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                n = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(n))
                peer.requests.append(body)
                peer.headers.append({k.lower(): v for k, v in self.headers.items()})
                answer = peer.script.pop(0) if peer.script else peer.default
                time.sleep(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up (a timeout, a superseded request)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, body: dict | bytes, delay_s: float = 0.0, status: int = 200) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.script.append(Scripted(raw, delay_s, status))

    def __enter__(self) -> OpenAIPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
