"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 in a thread that records every POST
and answers with the statuses it was given, in order (the last one repeats)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, statuses=(200,), body: bytes = b"ok", location: str | None = None,
                 hold: threading.Event | None = None):
        self.requests: list[Received] = []
        self.statuses = list(statuses)
        self.body, self.location, self.hold = body, location, hold
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # recorded on arrival: a sender that has its answer may look at once
                with receiver.changed:
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    receiver.changed.notify_all()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                try:
                    self.send_response(status)
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # serve_forever polls for shutdown; its default half second would be each test's teardown
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """Block until ``count`` requests arrived (fails after ``timeout`` seconds)."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout), \
                f"{len(self.requests)} of {count} requests arrived"
            return list(self.requests)

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def drain(app) -> None:
    """Wait for the app's in-process jobs to finish (a job it queues afterwards starts a fresh pool)."""
    from tasks import stop_inline_jobs

    stop_inline_jobs(app)
