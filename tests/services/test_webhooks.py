"""Webhooks: signed deliveries to a real local receiver, retries with backoff, the delivery log, the
README's verifier against replays and tampering, and each event emitted by its real trigger — only to
the project's active webhooks that subscribed to it, and only when the change committed."""

from __future__ import annotations

import base64
import importlib.util
import io
import socket
import threading
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from app.db import get_db
from app.errors import Conflict, NotFound, ValidationError
from app.models import Item, ProjectMember, Webhook, WebhookDelivery, utcnow
from app.services import assignment as queue
from app.services import exporting, importing, webhooks
from tests.factories import make_label_project, make_user
from tests.receiver import Receiver, drain

ROOT = Path(__file__).resolve().parents[2]


def _readme_verifier():
    """The README's example verifier, loaded from the file the README shows."""
    spec = importlib.util.spec_from_file_location("verify_webhook", ROOT / "docs" / "examples" / "verify_webhook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.verify


readme_verify = _readme_verifier()


def test_the_readme_shows_the_verifier_these_tests_run():
    import re

    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- example: verify-webhook -->\s*```python\n(.*?)```", readme, re.S)
    if match is None:
        pytest.skip("!!! the README has no <!-- example: verify-webhook --> block yet: it shows "
                    "docs/examples/verify_webhook.py as written !!!")
    assert match.group(1) == (ROOT / "docs" / "examples" / "verify_webhook.py").read_text()


@pytest.fixture
def by_hand(monkeypatch):
    """No delivery job after a commit: the test calls ``deliver`` itself, at the times it chooses."""
    import tasks

    monkeypatch.setattr(tasks, "dispatch_deliveries", lambda app, ids: None)


@pytest.fixture
def receivers():
    made = []

    def make(*statuses, **kwargs):
        receiver = Receiver(statuses or (200,), **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


def _hook(session, project, url, events=("export.completed",), active=True) -> Webhook:
    hook = Webhook(project_id=project.id, url=url, secret=webhooks.new_secret(), events=list(events), active=active)
    session.add(hook)
    session.commit()
    return hook


def _pending(session, project, event="export.completed", data=None) -> list[int]:
    """Emit an event and commit; the ids of its deliveries."""
    webhooks.emit(session, project.id, event, data or {"export_id": 7})
    session.flush()
    rows = [d.id for d in session.info[webhooks.OUTBOX]]
    session.commit()
    return rows


def _row(session, delivery_id) -> WebhookDelivery:
    session.expire_all()
    return session.get(WebhookDelivery, delivery_id)


FAST = webhooks.DeliverySettings(timeout=5, max_attempts=5, delays=(10, 60, 300))


# --- signing and the local receiver --------------------------------------------------------------------


def test_a_delivery_reaches_a_local_receiver_signed_and_is_logged(session, receivers, by_hand):
    receiver = receivers(200, body=b"thanks " * 200)
    project = make_label_project(session, items=1)
    hook = _hook(session, project, receiver.url)
    [delivery_id] = _pending(session, project, data={"export_id": 7, "rows": 3})
    now = utcnow()
    outcome = webhooks.deliver(session, delivery_id, FAST, now=now)
    assert outcome.status == "delivered" and outcome.attempts == 1 and outcome.response_code == 200
    [got] = receiver.wait_for(1)
    header = got.headers["Groundwork-Signature"]
    assert header.startswith(f"t={int(now.timestamp())},v1=")
    assert readme_verify(hook.secret, header, got.body, now=now.timestamp() + 1)
    assert webhooks.verify(hook.secret, header, got.body, now=now.timestamp() + 1)
    body = orjson.loads(got.body)
    assert body == {"id": got.headers["Groundwork-Delivery"], "type": "export.completed",
                    "created_at": body["created_at"], "project": project.slug, "data": {"export_id": 7, "rows": 3}}
    assert got.headers["Groundwork-Event"] == "export.completed" and got.headers["Content-Type"] == "application/json"
    row = _row(session, delivery_id)
    assert (row.status, row.attempts, row.response_code, row.event_id) == ("delivered", 1, 200, body["id"])
    assert row.response_body == ("thanks " * 200)[:500] and row.delivered_at is not None and row.error is None
    # delivered once: a second job for it does nothing
    assert webhooks.deliver(session, delivery_id, FAST).status == "skipped"
    assert len(receiver.requests) == 1


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(session, receivers, by_hand):
    receiver = receivers(500, 503, 200, body=b"busy")
    project = make_label_project(session, items=1)
    _hook(session, project, receiver.url)
    [delivery_id] = _pending(session, project)
    t0 = utcnow()

    first = webhooks.deliver(session, delivery_id, FAST, now=t0)
    assert (first.status, first.attempts, first.response_code, first.retry_in) == ("pending", 1, 500, 10)
    row = _row(session, delivery_id)
    assert (row.status, row.response_code, row.error, row.next_attempt_at) == ("pending", 500, "HTTP 500",
                                                                              t0 + timedelta(seconds=10))
    # not due yet: a job that wakes too early leaves it alone
    assert webhooks.deliver(session, delivery_id, FAST, now=t0 + timedelta(seconds=5)).status == "skipped"
    second = webhooks.deliver(session, delivery_id, FAST, now=t0 + timedelta(seconds=10))
    assert (second.status, second.attempts, second.response_code, second.retry_in) == ("pending", 2, 503, 60)
    third = webhooks.deliver(session, delivery_id, FAST, now=t0 + timedelta(seconds=70))
    assert (third.status, third.attempts, third.response_code, third.retry_in) == ("delivered", 3, 200, None)

    requests = receiver.wait_for(3)
    assert len({r.headers["Groundwork-Delivery"] for r in requests}) == 1  # the same event each time
    assert len({r.body for r in requests}) == 1  # the same bytes, signed afresh each time
    stamps = [r.headers["Groundwork-Signature"].split(",")[0] for r in requests]
    assert stamps == [f"t={int((t0 + timedelta(seconds=s)).timestamp())}" for s in (0, 10, 70)]
    row = _row(session, delivery_id)
    assert (row.status, row.attempts, row.response_code, row.error) == ("delivered", 3, 200, None)


def test_attempts_run_out_then_a_redelivery_tries_once_more(session, receivers, by_hand):
    receiver = receivers(500, 500, 500, 200)
    admin = make_user(session, "admin")
    project = make_label_project(session, items=1)
    _hook(session, project, receiver.url)
    [delivery_id] = _pending(session, project)
    settings = webhooks.DeliverySettings(timeout=5, max_attempts=2, delays=(0,))
    assert webhooks.deliver(session, delivery_id, settings).status == "pending"
    assert webhooks.deliver(session, delivery_id, settings).status == "failed"
    assert webhooks.deliver(session, delivery_id, settings).status == "skipped"  # failed stays failed
    row = _row(session, delivery_id)
    assert (row.status, row.attempts, row.response_code, row.next_attempt_at) == ("failed", 2, 500, None)

    again = webhooks.redeliver(session, project, delivery_id, admin.id)
    assert again.status == "pending"
    assert webhooks.deliver(session, delivery_id, settings).status == "failed"  # one more try, no retries
    assert webhooks.redeliver(session, project, delivery_id, admin.id).status == "pending"
    assert webhooks.deliver(session, delivery_id, settings).status == "delivered"
    assert _row(session, delivery_id).attempts == 4
    with pytest.raises(Conflict):
        webhooks.redeliver(session, project, delivery_id, admin.id)  # delivered: nothing to send again


def test_replayed_and_tampered_bodies_are_refused_by_the_readme_verifier(session, receivers, by_hand):
    receiver = receivers(204)
    project = make_label_project(session, items=1)
    hook = _hook(session, project, receiver.url)
    [delivery_id] = _pending(session, project)
    sent_at = utcnow()
    webhooks.deliver(session, delivery_id, FAST, now=sent_at)
    [got] = receiver.wait_for(1)
    header, body, t = got.headers["Groundwork-Signature"], got.body, int(sent_at.timestamp())
    for verify in (readme_verify, webhooks.verify):
        assert verify(hook.secret, header, body, now=t)
        assert verify(hook.secret, header, body, now=t + 300)  # within the five minutes
        assert not verify(hook.secret, header, body, now=t + 301)  # replayed later
        assert not verify(hook.secret, header, body, now=t - 301)  # from the future
        assert not verify(hook.secret, header, body.replace(b'"export_id":7', b'"export_id":8'), now=t)
        assert not verify(hook.secret, header, body + b" ", now=t)
        assert not verify("whsec_another", header, body, now=t)
        stamp, sig = header.split(",")
        assert not verify(hook.secret, f"t={int(t) + 60},{sig}", body, now=t)  # a new time on an old signature
        for broken in ("", "garbage", stamp, sig, "t=abc," + sig, "t=²," + sig, f"{stamp},v1=é",
                       "t=" + "9" * 5000 + "," + sig):
            assert not verify(hook.secret, broken, body, now=t)
    assert _row(session, delivery_id).response_code == 204


def test_a_user_and_password_in_the_address_go_as_basic_authentication(session, receivers, by_hand):
    receiver = receivers(200)
    project = make_label_project(session, items=1)
    _hook(session, project, receiver.url.replace("http://", "http://hook%40user:p%3Ass@"))
    [delivery_id] = _pending(session, project)
    assert webhooks.deliver(session, delivery_id, FAST).status == "delivered"
    [got] = receiver.wait_for(1)
    assert got.headers["Authorization"] == "Basic " + base64.b64encode(b"hook@user:p:ss").decode()
    assert got.path == "/hook"


def test_redirects_are_not_followed(session, receivers, by_hand):
    elsewhere = receivers(200)
    receiver = receivers(302, location=elsewhere.url)
    project = make_label_project(session, items=1)
    _hook(session, project, receiver.url)
    [delivery_id] = _pending(session, project)
    outcome = webhooks.deliver(session, delivery_id, FAST)
    assert (outcome.status, outcome.response_code) == ("pending", 302)
    receiver.wait_for(1)
    assert elsewhere.requests == []
    assert "redirect, which is not followed" in _row(session, delivery_id).error


def test_no_answer_in_time_and_no_server_are_logged_as_errors(session, receivers, by_hand):
    hold = threading.Event()
    slow = receivers(200, hold=hold)
    project = make_label_project(session, items=1)
    _hook(session, project, slow.url)
    [slow_id] = _pending(session, project)
    outcome = webhooks.deliver(session, slow_id, webhooks.DeliverySettings(timeout=0.2, max_attempts=1))
    hold.set()
    assert (outcome.status, outcome.response_code) == ("failed", None)
    assert _row(session, slow_id).error == "no answer within 0.2 s"

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    other = make_label_project(session, items=1)
    _hook(session, other, f"http://127.0.0.1:{port}/hook")
    [closed_id] = _pending(session, other)
    assert webhooks.deliver(session, closed_id, FAST).status == "pending"
    row = _row(session, closed_id)
    assert row.response_code is None and row.error.startswith("could not connect")


def test_a_ping_is_tried_once_and_a_disabled_webhook_gets_nothing(session, receivers, by_hand):
    receiver = receivers(500)
    admin = make_user(session, "admin")
    project = make_label_project(session, items=1)
    hook = _hook(session, project, receiver.url)
    ping = webhooks.send_test(session, project, hook.id, admin.id)
    assert ping.event == "ping" and ping.payload["data"] == {"webhook_id": hook.id, "events": ["export.completed"]}
    assert webhooks.deliver(session, ping.id, FAST).status == "failed"  # a test event is not retried

    [pending_id] = _pending(session, project)
    webhooks.set_active(session, project, hook.id, False, admin.id)
    assert webhooks.deliver(session, pending_id, FAST).status == "failed"
    assert "disabled" in _row(session, pending_id).error
    assert len(receiver.requests) == 1
    with pytest.raises(Conflict):
        webhooks.send_test(session, project, hook.id, admin.id)
    assert webhooks.emit(session, project.id, "export.completed", {}) == 0
    session.rollback()


def test_webhook_addresses_are_http_or_https_and_bounded(session):
    admin = make_user(session, "admin")
    project = make_label_project(session, items=1)
    for url, message in [
        ("", "enter the address"), ("ftp://example.org/x", "http:// or https://"), ("example.org/hook", "http://"),
        ("javascript:alert(1)", "http://"), ("file:///etc/passwd", "http://"), ("http:///path", "must name a host"),
        ("http://exa mple.org/", "printable ASCII"), ("http://exämple.org/", "printable ASCII"),
        ("http://example.org:99999/", "not a valid address"), ("http://[::1/", "not a valid address"),
        ("https://example.org/" + "x" * 2000, "at most 2000"),
        ("http://[::1]x/", "not a valid address"), ("http://[v1.x]/", "not a valid address"),
        ("http://h:0/", "port 0"), ("http://xn--/", "not a valid address"), ("http://a..b/", "not a valid address"),
        ("http://-a.example/", "not a valid address"), ("http://xn--0.example/", "does not decode"),
    ]:
        with pytest.raises(ValidationError) as refused:
            webhooks.create_webhook(session, project, url, ["export.completed"], admin.id)
        assert message in refused.value.errors["url"], url
    with pytest.raises(ValidationError) as refused:
        webhooks.create_webhook(session, project, "https://example.org/", [], admin.id)
    assert refused.value.errors == {"events": "tick at least one event"}
    with pytest.raises(ValidationError):
        webhooks.create_webhook(session, project, "https://example.org/", ["trainer.renamed"], admin.id)
    # a self-hosted install posts to services beside it: private and loopback addresses are allowed
    for url in ("http://10.0.0.5:8080/hook", "http://localhost/x", "https://hooks.example.org/a?b=c",
                "http://[::1]:9000/", "http://100.64.0.7/"):  # (a VPN's shared block stays allowed)
        hook = webhooks.create_webhook(session, project, url, ["project.completed", "export.completed"], admin.id)
        assert hook.url == url and hook.events == ["export.completed", "project.completed"]
        assert hook.secret.startswith("whsec_") and len(hook.secret) > 40
    assert len(webhooks.webhooks_of(session, project)) == 5
    # never a link-local (cloud metadata), multicast, unspecified or reserved address, however written
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/",
                "http://224.0.0.1/", "http://0.0.0.0:8080/", "http://[::]/", "http://255.255.255.255/",
                "http://240.0.0.1/",
                # IPv6 forms that carry a link-local IPv4 address (6to4, NAT64), and metadata services
                # outside the link-local blocks (Alibaba, AWS over IPv6, Azure)
                "http://[2002:a9fe:a9fe::1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://100.100.100.200/",
                "http://[fd00:ec2::254]/", "http://168.63.129.16/"):
        with pytest.raises(ValidationError) as refused:
            webhooks.create_webhook(session, project, url, ["export.completed"], admin.id)
        assert "where webhooks are not sent" in refused.value.errors["url"], url


@pytest.mark.parametrize("url", ["http://2852039166/latest/meta-data/", "http://0251.0376.0251.0376/", "http://0/",
                                 "http://0.1.2.3/", "http://169.254.169.254./", "http://0x7f000001.0/"])
def test_a_refused_address_written_as_a_name_is_refused_when_it_resolves(url):
    """Forms the address check cannot read as an IP (decimal, octal, a bare 0) resolve to one at delivery,
    and the connection is refused before any byte is sent; a form the resolver does not read either is
    an ordinary failure to connect."""
    reply = webhooks.post(url, b"{}", {"Content-Type": "application/json"}, 2.0)
    assert reply.code is None
    if url in ("http://169.254.169.254./", "http://0x7f000001.0/"):
        assert reply.error.startswith("could not connect"), reply.error
    else:
        assert reply.error.startswith("not sent: ") and "where webhooks are not sent" in reply.error, reply.error


def test_the_connection_check_lets_loopback_through(receivers):
    receiver = receivers(204)
    reply = webhooks.post(receiver.url.replace("127.0.0.1", "localhost"), b"{}", {}, 5.0)
    assert reply.code == 204 and len(receiver.wait_for(1)) == 1


def test_rotating_the_secret_signs_later_attempts_with_the_new_one(session, receivers, by_hand):
    receiver = receivers(500, 200)
    admin = make_user(session, "admin")
    project = make_label_project(session, items=1)
    hook = _hook(session, project, receiver.url)
    old = hook.secret
    [delivery_id] = _pending(session, project)
    webhooks.deliver(session, delivery_id, webhooks.DeliverySettings(timeout=5, delays=(0,)))
    new = webhooks.rotate_secret(session, project, hook.id, admin.id).secret
    assert new != old
    webhooks.deliver(session, delivery_id, webhooks.DeliverySettings(timeout=5, delays=(0,)))
    first, second = receiver.wait_for(2)
    assert webhooks.verify(old, first.headers["Groundwork-Signature"], first.body)
    assert webhooks.verify(new, second.headers["Groundwork-Signature"], second.body)
    assert not webhooks.verify(old, second.headers["Groundwork-Signature"], second.body)


def test_deleting_a_webhook_deletes_its_log_and_stays_in_its_project(session, by_hand):
    admin = make_user(session, "admin")
    project = make_label_project(session, items=1)
    other = make_label_project(session, items=1)
    hook = _hook(session, project, "http://127.0.0.1:9/hook")
    [delivery_id] = _pending(session, project)
    with pytest.raises(NotFound):
        webhooks.delete_webhook(session, other, hook.id, admin.id)
    with pytest.raises(NotFound):
        webhooks.get_delivery(session, other, delivery_id)
    assert webhooks.delete_webhook(session, project, hook.id, admin.id) == "http://127.0.0.1:9/hook"
    assert _row(session, delivery_id) is None
    assert webhooks.deliver(session, delivery_id, FAST).status == "skipped"


def test_overdue_deliveries_are_found_for_the_sweep(session, by_hand):
    project = make_label_project(session, items=1)
    _hook(session, project, "http://127.0.0.1:9/hook")
    fresh, lost, retry_lost, retry_later = (_pending(session, project)[0] for _ in range(4))
    now = utcnow()
    long_ago = now - timedelta(minutes=5)
    session.get(WebhookDelivery, lost).created_at = long_ago  # its dispatch never happened
    session.get(WebhookDelivery, retry_lost).next_attempt_at = long_ago  # its timer died with its process
    session.get(WebhookDelivery, retry_later).created_at = long_ago
    session.get(WebhookDelivery, retry_later).next_attempt_at = now + timedelta(minutes=30)
    session.commit()
    assert webhooks.overdue(session, now) == sorted([lost, retry_lost])
    assert fresh not in webhooks.overdue(session, now)


# --- the outbox: an event exists if and only if its change committed -----------------------------------


def test_an_emitted_event_is_delivered_after_the_commit_and_forgotten_on_a_rollback(app, session, receivers):
    receiver = receivers(200)
    project = make_label_project(session, items=1)
    _hook(session, project, receiver.url)
    assert webhooks.emit(session, project.id, "export.completed", {"export_id": 1}) == 1
    session.rollback()
    assert webhooks.emit(session, project.id, "export.completed", {"export_id": 2}) == 1
    session.commit()  # the app's listener queues the delivery job
    [got] = receiver.wait_for(1)
    drain(app)
    session.rollback()
    assert orjson.loads(got.body)["data"] == {"export_id": 2}
    rows = session.scalars(select(WebhookDelivery).execution_options(populate_existing=True)).all()
    assert [(r.status, r.payload["data"]) for r in rows] == [("delivered", {"export_id": 2})]


# --- each event from its real trigger, to subscribed active hooks only --------------------------------


@pytest.fixture
def hooks(session, receivers):
    """For an event: the project's subscribed active hook (the one that must get it), and three that
    must not — disabled, subscribed to something else, another project's."""

    def make(project, event):
        receiver = receivers(200)
        elsewhere = make_label_project(session, items=1)
        wanted = _hook(session, project, receiver.url, events=(event,))
        for target, events, active in ((project, (event,), False),
                                       (project, tuple(e for e in webhooks.EVENTS if e != event), True),
                                       (elsewhere, (event,), True)):
            _hook(session, target, receiver.url, events=events, active=active)
        return wanted, receiver

    return make


def _only_delivery(app, session, wanted, receiver, event):
    got = receiver.wait_for(1)
    drain(app)
    session.rollback()  # a fresh snapshot: the job wrote after this session last read
    rows = session.scalars(select(WebhookDelivery).execution_options(populate_existing=True)).all()
    assert [(r.webhook_id, r.event, r.status) for r in rows] == [(wanted.id, event, "delivered")]
    assert len(receiver.requests) == 1 and got[0].headers["Groundwork-Event"] == event
    assert webhooks.verify(wanted.secret, got[0].headers["Groundwork-Signature"], got[0].body)
    return orjson.loads(got[0].body)


def test_import_completed_is_emitted_when_an_import_job_finishes(app, session, hooks, tmp_path):
    admin = make_user(session, "admin")
    project = make_label_project(session, items=0)
    wanted, receiver = hooks(project, "import.completed")
    data = b"".join(orjson.dumps({"external_id": f"n{i}", "prompt": f"P{i}", "responses": ["R"]}) + b"\n"
                    for i in range(3))
    job = importing.create_job(session, project, "items.jsonl", lambda path: path.write_bytes(data),
                               tmp_path / "imports", admin.id)
    assert session.scalars(select(WebhookDelivery)).all() == []
    with app.app_context():
        importing.run_import_job(get_db().session_factory, job.id)
    body = _only_delivery(app, session, wanted, receiver, "import.completed")
    assert body["project"] == project.slug
    assert body["data"] == {"import_id": job.id, "lines": 3, "inserted": 3, "updated": 0, "skipped": 0}


def test_a_failed_import_emits_nothing_and_a_command_line_import_emits_too(app, session, hooks):
    project = make_label_project(session, items=0)
    wanted, receiver = hooks(project, "import.completed")
    bad = importing.import_file(session, project, io.BytesIO(b'{"prompt": "not JSON"\n'), "jsonl")
    assert not bad.ok
    report = importing.import_file(session, project, io.BytesIO(b'{"prompt": "P", "responses": ["R"]}\n'), "jsonl")
    assert report.inserted == 1
    body = _only_delivery(app, session, wanted, receiver, "import.completed")
    assert body["data"] == {"import_id": None, "lines": 1, "inserted": 1, "updated": 0, "skipped": 0}


def test_export_completed_is_emitted_when_a_version_is_built(app, session, hooks):
    admin = make_user(session, "admin")
    trainer = make_user(session, "trainer")
    project = make_label_project(session, items=1, trainers=[trainer])
    task = queue.next_task(session, trainer.id, project)
    queue.submit(session, task.id, trainer.id, {"label": "yes"})
    wanted, receiver = hooks(project, "export.completed")
    export = exporting.create_export(session, project, {"format": "raw"}, admin.id)
    assert session.scalars(select(WebhookDelivery)).all() == []
    with app.app_context():
        built = exporting.run_export(get_db().session_factory, export.id, app.config["EXPORT_DIR"],
                                     app.config["SECRET_KEY"])
    body = _only_delivery(app, session, wanted, receiver, "export.completed")
    assert body["data"] == {"export_id": export.id, "format": "raw", "status": built.status, "rows": built.row_count,
                            "bytes": built.bytes, "sha256": built.sha256,
                            "files": [f["name"] for f in built.manifest["files"]]}


def test_project_completed_is_emitted_by_the_answer_that_finishes_the_last_item(app, session, hooks):
    first, second = make_user(session, "trainer"), make_user(session, "trainer")
    project = make_label_project(session, items=2, overlap=2, trainers=[first, second])
    wanted, receiver = hooks(project, "project.completed")
    submitted = 0
    for trainer in (first, second):
        for _ in range(2):
            task = queue.next_task(session, trainer.id, project)
            queue.submit(session, task.id, trainer.id, {"label": "yes"})
            submitted += 1
            if submitted < 4:
                assert session.scalars(select(WebhookDelivery)).all() == [], f"after answer {submitted}"
    body = _only_delivery(app, session, wanted, receiver, "project.completed")
    assert body["data"] == {"items": 2, "overlap": 2}


def test_trainer_flagged_is_emitted_when_gold_pauses_a_trainer_and_names_nobody(app, session, hooks):
    trainer = make_user(session, "trainer", name="Zelda Uniquename", email="zelda.unique@example.test")
    project = make_label_project(session, items=6, trainers=[trainer])
    for item in session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id).limit(4)):
        item.is_gold, item.gold_answers, item.priority = True, {"label": "yes"}, 10
    project.gold_rate = 1.0
    session.commit()
    wanted, receiver = hooks(project, "trainer.flagged")
    for n in range(3):
        task = queue.next_task(session, trainer.id, project)
        queue.submit(session, task.id, trainer.id, {"label": "no"})  # wrong on gold
        if n < 2:
            assert session.scalars(select(WebhookDelivery)).all() == []
    member = session.scalar(select(ProjectMember).where(ProjectMember.user_id == trainer.id)
                            .execution_options(populate_existing=True))
    assert member.status == "paused"
    body = _only_delivery(app, session, wanted, receiver, "trainer.flagged")
    assert body["data"] == {"member_id": member.id, "status": "paused", "reason": member.flagged_reason,
                            "gold_answers": 3, "gold_accuracy": 0.0}
    raw = receiver.requests[0].body.decode()
    assert "Zelda" not in raw and "zelda.unique" not in raw
