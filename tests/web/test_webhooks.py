"""The admin's webhooks page: add (with clear errors), send a test event to a real local receiver,
the delivery log with its response codes and pages, disable and enable, rotate, redeliver, delete."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.models import AuditEvent, Webhook, WebhookDelivery, utcnow
from app.services import webhooks
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_label_project, make_user
from tests.receiver import Receiver, drain


def _admin(client, session):
    admin = make_user(session, "admin")
    login(client, admin.email, PASSWORD)
    return admin


def _count(session, model) -> int:
    session.rollback()
    return session.scalar(select(func.count(model.id)))


def test_an_admin_adds_a_webhook_tests_it_and_reads_the_log(app, client, session):
    receiver = Receiver((200,), body=b"<script>alert(1)</script> received")
    try:
        _admin(client, session)
        make_label_project(session, items=1, slug="hooked")
        base = "/admin/projects/hooked/webhooks/"
        page = client.get(base).get_data(as_text=True)
        assert 'data-testid="no-webhooks"' in page and 'data-testid="no-deliveries"' in page
        assert 'href="/admin/projects/hooked/webhooks/"' in client.get("/admin/projects/hooked").get_data(as_text=True)
        token = csrf_token(client, base)

        refused = client.post(base, data={"csrf_token": token, "url": "ftp://example.org/x"})
        body = refused.get_data(as_text=True)
        assert refused.status_code == 422
        assert "must start with http:// or https://" in body and "tick at least one event" in body
        assert 'value="ftp://example.org/x"' in body  # what was typed stays in the form
        assert _count(session, Webhook) == 0

        added = client.post(base, data={"csrf_token": token, "url": receiver.url,
                                        "events": ["export.completed", "trainer.flagged"]})
        assert added.status_code == 303
        session.rollback()
        hook = session.scalars(select(Webhook)).one()
        assert hook.events == ["export.completed", "trainer.flagged"] and hook.active
        page = client.get(base).get_data(as_text=True)
        assert receiver.url in page and hook.secret in page and "Webhook added" in page

        sent = client.post(f"{base}{hook.id}/test", data={"csrf_token": token})
        assert sent.status_code == 303 and sent.headers["Location"].endswith("#deliveries")
        [got] = receiver.wait_for(1)
        drain(app)
        assert got.headers["Groundwork-Event"] == "ping"
        assert webhooks.verify(hook.secret, got.headers["Groundwork-Signature"], got.body)
        page = client.get(base).get_data(as_text=True)
        row = re.search(r'<tr data-delivery-id="(\d+)" data-status="delivered">(.*?)</tr>', page, re.S)
        assert row and "<code>ping</code>" in row.group(2) and ">200<" in row.group(2)
        detail = client.get(f"{base}deliveries/{row.group(1)}").get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt; received" in detail and "<script>alert(1)" not in detail
        assert got.headers["Groundwork-Delivery"] in detail
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("webhook.%"))).all()
        assert actions == ["webhook.create"]
    finally:
        receiver.close()


def test_disable_enable_rotate_delete_and_redeliver(app, client, session):
    receiver = Receiver((200,))
    try:
        admin = _admin(client, session)
        project = make_label_project(session, items=1, slug="hooked")
        hook = webhooks.create_webhook(session, project, receiver.url, ["export.completed"], admin.id)
        base = f"/admin/projects/hooked/webhooks/{hook.id}"
        token = csrf_token(client, "/admin/projects/hooked/webhooks/")

        assert client.post(f"{base}/active", data={"csrf_token": token}).status_code == 422
        assert client.post(f"{base}/active", data={"csrf_token": token, "active": "0"}).status_code == 303
        page = client.get("/admin/projects/hooked/webhooks/").get_data(as_text=True)
        assert "disabled" in page and 'data-testid="send-test"' not in page
        refused = client.post(f"{base}/test", data={"csrf_token": token}, follow_redirects=True)
        assert "this webhook is disabled" in refused.get_data(as_text=True)
        assert _count(session, WebhookDelivery) == 0
        assert client.post(f"{base}/active", data={"csrf_token": token, "active": "1"}).status_code == 303

        old = hook.secret
        assert client.post(f"{base}/rotate", data={"csrf_token": token}).status_code == 303
        session.rollback()
        session.refresh(hook)
        assert hook.secret != old and hook.secret in client.get("/admin/projects/hooked/webhooks/").get_data(as_text=True)

        # a failed delivery: redelivered from its page, it reaches the receiver now
        failed = WebhookDelivery(webhook_id=hook.id, event="export.completed", event_id="evt_failed",
                                 payload=webhooks.payload_for("export.completed", "evt_failed", "hooked", {}, utcnow()),
                                 status="failed", attempts=6, response_code=500, error="HTTP 500")
        session.add(failed)
        session.commit()
        failed_id = failed.id
        detail = client.get(f"/admin/projects/hooked/webhooks/deliveries/{failed.id}").get_data(as_text=True)
        assert "Redeliver" in detail and "HTTP 500" in detail
        again = client.post(f"/admin/projects/hooked/webhooks/deliveries/{failed.id}/redeliver",
                            data={"csrf_token": token, "back": "delivery"})
        assert again.headers["Location"].endswith(f"/deliveries/{failed.id}")
        [got] = receiver.wait_for(1)
        drain(app)
        assert got.headers["Groundwork-Delivery"] == "evt_failed"
        session.rollback()
        session.refresh(failed)
        assert (failed.status, failed.attempts, failed.response_code) == ("delivered", 7, 200)
        twice = client.post(f"/admin/projects/hooked/webhooks/deliveries/{failed.id}/redeliver",
                            data={"csrf_token": token}, follow_redirects=True)
        assert "only a failed delivery" in twice.get_data(as_text=True)

        assert client.post(f"{base}/delete", data={"csrf_token": token}).status_code == 422  # not confirmed
        assert _count(session, Webhook) == 1
        assert client.post(f"{base}/delete", data={"csrf_token": token, "confirm": "delete"}).status_code == 303
        assert _count(session, Webhook) == 0 and _count(session, WebhookDelivery) == 0
        assert client.get(f"/admin/projects/hooked/webhooks/deliveries/{failed_id}").status_code == 404
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("webhook.%"))
                                  .order_by(AuditEvent.id)).all()
        assert actions == ["webhook.create", "webhook.disable", "webhook.enable", "webhook.rotate_secret",
                           "webhook.redeliver", "webhook.delete"]
    finally:
        receiver.close()


def test_a_password_in_an_address_is_masked_on_the_page(client, session):
    admin = _admin(client, session)
    project = make_label_project(session, items=1, slug="hooked")
    webhooks.create_webhook(session, project, "https://bot:s3cret-pass@hooks.example.org/in", ["export.completed"],
                            admin.id)
    page = client.get("/admin/projects/hooked/webhooks/").get_data(as_text=True)
    assert "https://bot:•••@hooks.example.org/in" in page and "s3cret-pass" not in page


def test_the_log_has_pages_and_another_projects_rows_are_not_found(client, session):
    admin = _admin(client, session)
    project = make_label_project(session, items=1, slug="hooked")
    other = make_label_project(session, items=1, slug="other")
    hook = webhooks.create_webhook(session, project, "http://127.0.0.1:9/hook", ["export.completed"], admin.id)
    foreign = webhooks.create_webhook(session, other, "http://127.0.0.1:9/other", ["export.completed"], admin.id)
    for n in range(webhooks_page_size() + 3):
        session.add(WebhookDelivery(webhook_id=hook.id, event="export.completed", event_id=f"evt_{n}", payload={},
                                    status="failed", attempts=1, response_code=500))
    theirs = WebhookDelivery(webhook_id=foreign.id, event="export.completed", event_id="evt_theirs", payload={},
                             status="failed", attempts=1)
    session.add(theirs)
    session.commit()
    base = "/admin/projects/hooked/webhooks/"
    first = client.get(base).get_data(as_text=True)
    assert first.count("data-delivery-id=") == webhooks_page_size() and "Page 1 of 2" in first
    assert "evt_theirs" not in first and "127.0.0.1:9/other" not in first
    assert client.get(base + "?page=2").get_data(as_text=True).count("data-delivery-id=") == 3
    assert client.get(base + "?page=3").status_code == 404
    token = csrf_token(client, base)
    assert client.get(f"{base}deliveries/{theirs.id}").status_code == 404
    assert client.post(f"{base}deliveries/{theirs.id}/redeliver", data={"csrf_token": token}).status_code == 404
    assert client.post(f"{base}{foreign.id}/test", data={"csrf_token": token}).status_code == 404
    assert client.post(f"{base}{foreign.id}/delete", data={"csrf_token": token, "confirm": "delete"}).status_code == 404
    assert client.get("/admin/projects/nope/webhooks/").status_code == 404


def webhooks_page_size() -> int:
    from app.web.webhooks import PAGE_SIZE

    return PAGE_SIZE


def test_only_admins_reach_the_page(client, session):
    trainer = make_user(session, "trainer")
    client_user = make_user(session, "client")
    make_label_project(session, items=1, slug="hooked", trainers=[trainer])
    for user in (trainer, client_user):
        login(client, user.email, PASSWORD)
        assert client.get("/admin/projects/hooked/webhooks/").status_code == 403
        client.post("/logout", data={"csrf_token": csrf_token(client, "/account/tokens/")})
