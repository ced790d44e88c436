"""The Slack processor (spec §5.5) against a local fake of the Slack Web API: DMs by annotation and
by email lookup, channel messages, broadcast routes, Block Kit, chat.update on a scoped re-send,
rate limits."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from tests.processors.conftest import herald_config, org_yaml, running_app

from herald.core.ports import NewNotification
from herald.processors import Outcome, ProcessorConfigError
from herald.processors._slack import SlackProcessor, SlackSettings
from herald.processors.testing import (
    FakeDirectory,
    FakeEntity,
    HttpRecorder,
    RecordedRequest,
    broadcast_request,
    entity_request,
    make_context,
    make_delivery,
    make_notification,
)

TOKEN = "xoxb-1234-SECRET-token"


class FakeSlack:
    """Answers like the Slack Web API; `users` maps emails to Slack user ids."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = users or {}
        self.ts = itertools.count(1)

    def __call__(self, req: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        method = req.path.rsplit("/", 1)[-1]
        if method == "users.lookupByEmail":
            email = parse_qs(req.body.decode())["email"][0]
            found = self.users.get(email)
            body: dict[str, Any] = {"ok": True, "user": {"id": found}} if found else {
                "ok": False, "error": "users_not_found"}
        elif method == "chat.postMessage":
            body = {"ok": True, "channel": req.json()["channel"], "ts": f"1700000000.{next(self.ts):06d}"}
        elif method == "chat.update":
            body = {"ok": True, "channel": req.json()["channel"], "ts": req.json()["ts"]}
        else:
            body = {"ok": False, "error": "unknown_method"}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def slack(server: HttpRecorder, directory: FakeDirectory | None = None, **raw: Any) -> SlackProcessor:
    settings = SlackProcessor.parse_settings([{"token": TOKEN, "apiUrl": server.url + "/api", **raw}])
    assert isinstance(settings, SlackSettings)
    return SlackProcessor(settings, make_context(directory=directory or FakeDirectory(),
                                                 app_base_url="https://backstage.example.org"))


def calls(server: HttpRecorder) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for r in server.requests:
        method = r.path.rsplit("/", 1)[-1]
        body = parse_qs(r.body.decode()) if method == "users.lookupByEmail" else r.json()
        out.append((method, body))
    return out


async def test_dm_by_annotation_with_block_kit() -> None:
    d = FakeDirectory()
    d.add_user("user:default/mock", "mock@example.com", **{"slack.com/bot-notify": "U0MOCK"})
    async with HttpRecorder(FakeSlack()) as server:
        p = slack(server, d, username="Herald")
        n = make_notification(title="Deploy <prod>", description="Done & dusted", link="/catalog/x",
                              severity="critical", topic="deploy")
        result = await p.deliver(make_delivery(n, target="0"))
        await p.aclose()
    assert result.outcome == Outcome.OK
    assert result.receipt == {"channel": "U0MOCK", "ts": "1700000000.000001"}
    [(method, body)] = calls(server)
    assert method == "chat.postMessage"
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert body == {
        "channel": "U0MOCK", "username": "Herald", "text": "Deploy &lt;prod&gt;",
        "attachments": [{"color": "#FF0000", "fallback": "Deploy <prod>", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Done &amp; dusted"},
             "accessory": {"type": "button", "text": {"type": "plain_text", "text": "View More"},
                           "action_id": "button-action", "url": "https://backstage.example.org/catalog/x"}},
            {"type": "context", "elements": [
                {"type": "plain_text", "text": "Severity: critical", "emoji": True},
                {"type": "plain_text", "text": "Topic: deploy", "emoji": True}]}]}]}


@pytest.mark.parametrize(("severity", "color"), [("high", "#FFA500"), ("normal", "#00A699"), ("low", "#00A699")])
async def test_colors(severity: str, color: str) -> None:
    async with HttpRecorder(FakeSlack()) as server:
        p = slack(server)
        await p.deliver(make_delivery(make_notification(user=None, severity=severity), target="0|C1"))
        await p.aclose()
    body = calls(server)[0][1]
    assert body["attachments"][0]["color"] == color
    section = body["attachments"][0]["blocks"][0]["text"]["text"]
    assert section == "No description provided"
    assert body["attachments"][0]["blocks"][1]["elements"][1]["text"] == "Topic: N/A"


async def test_dm_by_email_lookup_is_cached_and_mentions_are_resolved() -> None:
    d = FakeDirectory()
    d.add_user("user:default/mock", "mock@example.com")
    d.add_user("user:default/jane", "jane@example.com")
    d.add_user("user:default/nobody", "nobody@example.com")
    async with HttpRecorder(FakeSlack({"mock@example.com": "U1", "jane@example.com": "U2"})) as server:
        p = slack(server, d)
        n = make_notification(description="Ask <@user:default/jane> or <@user:default/ghost>")
        first = await p.deliver(make_delivery(n, target="0"))
        second = await p.deliver(make_delivery(n, target="0"))
        missing = await p.deliver(make_delivery(make_notification(user="user:default/nobody"), target="0"))
        await p.aclose()
    assert first.outcome == second.outcome == Outcome.OK
    assert missing.outcome == Outcome.SKIPPED and "has no Slack account" in missing.detail
    methods = [m for m, _ in calls(server)]
    assert methods == ["users.lookupByEmail", "users.lookupByEmail", "chat.postMessage", "chat.postMessage",
                       "users.lookupByEmail"]
    post = calls(server)[2][1]
    assert post["channel"] == "U1"
    assert post["attachments"][0]["blocks"][0]["text"]["text"] == "Ask <@U2> or &lt;@user:default/ghost&gt;"


async def test_plan_dms_only_explicit_users_and_posts_to_entity_channels() -> None:
    d = FakeDirectory(entities=[FakeEntity("group:default/team", {"slack.com/bot-notify": "C-TEAM"}),
                                FakeEntity("component:default/api", {})])
    async with HttpRecorder(FakeSlack()) as server:
        p = slack(server, d)
        base = NewNotification("external:ci", 0, "t", None, None, "normal", None, None, None)
        plan = await p.plan(base, entity_request("user:default/alice", "group:default/team",
                                                 "component:default/api"))
        assert (set(plan.users or ()), plan.per_user, plan.extra) == ({"user:default/alice"}, ("0",),
                                                                      ("0|C-TEAM",))
        override = await p.plan(base, entity_request("group:default/team", metadata={"slackChannel": "C-OVR"}))
        assert override.extra == ("0|C-OVR",)
        await p.aclose()


async def test_broadcast_routes() -> None:
    routes = [{"origin": "plugin:ci", "topic": "deploy", "channel": "C-BOTH"},
              {"origin": "plugin:ci", "channel": ["C-ORIGIN-1", "C-ORIGIN-2"]},
              {"topic": "deploy", "channel": "C-TOPIC"}]
    async with HttpRecorder(FakeSlack()) as server:
        p = slack(server, broadcastRoutes=routes, broadcastChannels=["C-DEFAULT"])

        async def targets(origin: str, topic: str | None) -> tuple[str | None, ...]:
            base = NewNotification(origin, 0, "t", None, None, "normal", topic, None, None)
            return (await p.plan(base, broadcast_request())).extra

        assert await targets("plugin:ci", "deploy") == ("0|C-BOTH",)
        assert await targets("plugin:ci", "other") == ("0|C-ORIGIN-1", "0|C-ORIGIN-2")
        assert await targets("plugin:x", "deploy") == ("0|C-TOPIC",)
        assert await targets("plugin:x", None) == ("0|C-DEFAULT",)
        await p.aclose()


@pytest.mark.parametrize(("status", "body", "headers", "outcome", "retry_after"), [
    (429, b"", {"Retry-After": "3"}, Outcome.RETRYABLE, 3000),
    (500, b"", {}, Outcome.RETRYABLE, None),
    (200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "2"}, Outcome.RETRYABLE, 2000),
    (200, {"ok": False, "error": "internal_error"}, {}, Outcome.RETRYABLE, None),
    (200, {"ok": False, "error": "channel_not_found"}, {}, Outcome.PERMANENT, None),
    (200, {"ok": False, "error": "invalid_auth"}, {}, Outcome.PERMANENT, None),
    (403, b"", {}, Outcome.PERMANENT, None),
])
async def test_errors(status: int, body: Any, headers: dict[str, str], outcome: Outcome,
                      retry_after: int | None) -> None:
    async with HttpRecorder(FakeSlack()) as server:
        server.reply(status, body, headers)
        p = slack(server)
        result = await p.deliver(make_delivery(make_notification(user=None), target="0|C1"))
        await p.aclose()
    assert (result.outcome, result.retry_after_ms) == (outcome, retry_after), result


def test_settings() -> None:
    for raw, message in [([], "workspaces"), ([{"token": "not-a-token-SECRET"}], "must be a Slack token"),
                         ([{"token": TOKEN, "name": "a"}, {"token": TOKEN, "name": "a"}], "must be unique"),
                         ([{"token": TOKEN, "apiUrl": "ftp://x"}], "apiUrl"),
                         ([{"token": TOKEN, "bogus": 1}], "bogus")]:
        with pytest.raises(ProcessorConfigError, match=message) as e:
            SlackProcessor.parse_settings(raw)
        assert "SECRET" not in str(e.value)
    single = SlackProcessor.parse_settings({"token": TOKEN})
    assert isinstance(single, SlackSettings) and len(single.workspaces) == 1
    assert single.redacted()["workspaces"][0]["token"] == "**********"


# -- through the ledger: chat.update on a scoped re-send, rate limits respected ---------------------


async def test_scoped_resend_edits_the_earlier_message(db_url: str, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(2, annotations=lambda i: {"slack.com/bot-notify": f"U{i}"}))
    async with HttpRecorder(FakeSlack()) as server:
        cfg = herald_config(db_url, tmp_path, org, processors={"slack": [
            {"token": TOKEN, "apiUrl": server.url + "/api/", "throttleInterval": 0}]})
        async with running_app(cfg) as app:
            await app.to("user:default/u0", "group:default/team", title="Build 7 running", scope="build-7")
            await app.settle()
            await app.to("user:default/u0", title="Build 7 passed", scope="build-7")
            await app.settle()
            counts = await app.deliveries.ledger.counts()
    methods = [(m, b.get("channel"), b.get("ts"), b["text"]) for m, b in calls(server)]
    assert methods == [("chat.postMessage", "U0", None, "Build 7 running"),
                       ("chat.update", "U0", "1700000000.000001", "Build 7 passed")]
    # the group resolved to u1 too, but only explicitly named users get a DM (upstream behaviour)
    assert counts["SlackNotificationProcessor"] == {"delivered": 2}


async def test_rate_limit_is_respected(db_url: str, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(1, annotations=lambda i: {"slack.com/bot-notify": "U0"}))
    async with HttpRecorder(FakeSlack()) as server:
        server.reply(429, b"", {"Retry-After": "1"})
        cfg = herald_config(db_url, tmp_path, org, processors={"slack": [
            {"token": TOKEN, "apiUrl": server.url + "/api/", "throttleInterval": 0}]})
        async with running_app(cfg) as app:
            [sent] = await app.to("user:default/u0")
            await app.settle(timeout_s=30)
            [row] = await app.deliveries_of(sent["id"])
            history = (await app.http.get(f"/api/herald/deliveries/{row['id']}",
                                          headers={"Authorization": "Bearer svc-token-for-processor-tests-0123456789"}
                                          )).json()
    from herald.core.clock import parse_date_ms

    first, second = history["attempts"]
    assert (first["outcome"], second["outcome"]) == ("retryable", "ok")
    assert (parse_date_ms(second["started"]) or 0) - (parse_date_ms(first["finished"]) or 0) >= 950
    assert len(server.requests) == 2
