"""Test helpers for webhooks: an API client with a callback URL, and a real local HTTP receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from api.models import ApiClient
from api.tokens import new_token, token_hash, token_prefix
from institutions.models import Branch, Role, User

SECRET = "whsec-test-0123456789"


def make_api_client(
    branch: Branch, *, name: str = "cbs", webhook_url: str = "", secret: str = SECRET, revoked: bool = False
) -> ApiClient:
    """An API client of ``branch``'s institution acting as its own maker (no usable password)."""
    user = User.objects.create_user(username=f"api-{name}", role=Role.MAKER)
    user.set_unusable_password()
    user.save()
    user.branches.set([branch])
    token = new_token()
    client = ApiClient.objects.create(
        name=name,
        institution=branch.institution,
        user=user,
        token_hash=token_hash(token),
        token_prefix=token_prefix(token),
        webhook_url=webhook_url,
        webhook_secret=secret,
    )
    if revoked:
        ApiClient.objects.filter(pk=client.pk).update(revoked_at=client.created_at)
    client.branches.set([branch])
    return client


@dataclass(frozen=True)
class Received:
    """One POST the receiver got: its path, headers and raw body."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What the receiver answers to one POST: a status, optional headers, after an optional delay."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class Receiver:
    """A client's webhook endpoint on 127.0.0.1: answers each POST with the next scripted Answer (200 once
    the script is used up) and keeps what it received."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:  # the sender gave up (timeout) and closed the connection
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ckyc"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
