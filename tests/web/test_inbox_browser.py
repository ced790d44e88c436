"""The inbox page in a real browser (headless Chromium through Playwright) against a real
`herald serve`: sign-in, the list, live updates, actions, filters, the deep link, settings,
keyboard use, and screenshots under test-artifacts/web/ (light, dark, settings, phone)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `browser` fixture skips (or, under CI=true, fails) these tests
    Page = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]
else:
    expect.set_options(timeout=10_000)

pytestmark = pytest.mark.browser

# As configured by the `herald_server` fixture (tests/web/conftest.py).
ORIGIN = "external:web-tests"
APP_BASE_URL = "http://backstage.test"
HeraldServer = Any

NAMES = {"alice": "Alice Adams", "bob": "Bob Baker", "carol": "Carol Clark", "dave": "Dave Diaz",
         "erin": "Erin Ellis", "frank": "Frank Foster", "grace": "Grace Green", "henry": "Henry Hill"}


def ref(user: str) -> str:
    return f"user:default/{user}"


def open_inbox(new_page: Any, server: HeraldServer, user: str, *, path: str = "/", **context: Any) -> Page:
    """Sign in through the demo picker; returns the page with the inbox loaded."""
    page: Page = new_page(**context)
    page.goto(server.base + "/")
    page.locator(f"[data-ref='{ref(user)}']").click()
    expect(page.locator("#user-name")).to_have_text(NAMES[user])
    if path != "/":
        page.goto(server.base + path)
    wait_loaded(page)
    return page


def wait_loaded(page: Page) -> None:
    view = page.locator("#inbox-view")
    expect(view).to_be_visible()
    expect(view).not_to_have_attribute("aria-busy", "true")


def titles(page: Page) -> list[str]:
    wait_loaded(page)
    return [t.strip() for t in page.locator(".item .title-text").all_inner_texts()]


def row(page: Page, title: str) -> Any:
    return page.locator(".item").filter(has=page.locator(".title", has_text=title))


def status(server: HeraldServer, user: str) -> dict[str, int]:
    result: dict[str, int] = server.user_get(ref(user), "/status")
    return result


# -- sign-in --------------------------------------------------------------------------------------


def test_demo_sign_in_keeps_the_token_out_of_urls_and_logs(herald_server: HeraldServer, new_page: Any) -> None:
    page = new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    page.goto(herald_server.base + "/")
    expect(page.locator(".user-pick")).to_have_count(8)
    expect(page).to_have_title("Sign in · Herald")
    page.get_by_role("button", name=re.compile("Alice Adams")).click()
    expect(page.locator("#user-name")).to_have_text("Alice Adams")
    wait_loaded(page)
    expect(page.locator(".empty h2")).to_have_text("You are all caught up")

    credential = page.evaluate("sessionStorage.getItem('herald.credential')")
    assert credential and credential.count(".") == 2
    assert page.evaluate("Object.keys(localStorage).filter(k => localStorage.getItem(k).includes('eyJ'))") == []
    assert page.url == herald_server.base + "/"
    # A reload resumes the tab's session.
    page.reload()
    expect(page.locator("#user-name")).to_have_text("Alice Adams")
    wait_loaded(page)
    assert urls
    for url in urls:  # neither the credential nor the session token (any JWT) in any URL
        assert "eyJ" not in url and "token=" not in url.lower(), url
    sockets = [u for u in urls if u.startswith("ws://")]
    assert sockets == [] or all(u.endswith("/api/signals") for u in sockets), sockets
    assert "eyJ" not in herald_server.log_text()
    # Signing out forgets it.
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".user-pick").first).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('herald.credential')") is None


def test_sign_in_with_a_pasted_token(herald_server: HeraldServer, new_page: Any) -> None:
    page = new_page()
    new_page.allow("status of 401")  # the refused token
    page.goto(herald_server.base + "/")
    page.get_by_text("Use a token instead").click()
    field = page.get_by_label("User token")
    expect(field).to_have_attribute("type", "password")
    field.fill("not.a.token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token was not accepted.")
    field.fill(herald_server.user_token(ref("bob")))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#user-name")).to_have_text("Bob Baker")
    wait_loaded(page)
    assert page.url == herald_server.base + "/"


# -- the list ---------------------------------------------------------------------------------------


def test_the_list_shows_every_field_and_the_broadcast_marker(herald_server: HeraldServer, new_page: Any) -> None:
    s = herald_server
    s.send(ref("alice"), title="Deploy failed", description="Step migrate failed on prod.",
           link="https://ci.example.test/runs/1", severity="critical", topic="deploys")
    s.send(None, title="Portal maintenance tonight", description="Read-only 02:00 to 04:00.", topic="announcements")
    s.send(ref("alice"), title="Weekly report", severity="low", link="/catalog/default/component/x")
    page = open_inbox(new_page, s, "alice")

    assert titles(page) == ["Weekly report", "Portal maintenance tonight", "Deploy failed"]
    deploy = row(page, "Deploy failed")
    expect(deploy.locator(".desc")).to_have_text("Step migrate failed on prod.")
    expect(deploy.locator(".meta .sev-label")).to_have_text("Critical")
    expect(deploy.locator(".meta .chip-topic")).to_have_text("deploys")
    expect(deploy.locator(".meta .origin")).to_have_text(ORIGIN)
    expect(deploy.locator(".meta time")).to_have_text("just now")
    expect(deploy.locator(".chip-broadcast")).to_have_count(0)
    expect(deploy).to_have_class(re.compile(r"\bunread\b"))
    expect(deploy.locator("a.title")).to_have_attribute("href", "https://ci.example.test/runs/1")
    expect(deploy.locator("a.title")).to_have_attribute("target", "_blank")
    broadcast = row(page, "Portal maintenance tonight")
    expect(broadcast.locator(".chip-broadcast")).to_have_text("Broadcast")
    expect(broadcast.locator(".meta .sev-label")).to_have_text("Normal")
    # A relative link points into the Backstage app (app.baseUrl).
    expect(row(page, "Weekly report").locator("a.title")).to_have_attribute(
        "href", APP_BASE_URL + "/catalog/default/component/x")
    expect(row(page, "Weekly report").locator(".chip-topic")).to_have_count(0)

    expect(page.locator("#unread-badge")).to_have_text("3")
    expect(page).to_have_title("(3) Inbox · Herald")
    expect(page.locator(".seg[data-view=unread] .count")).to_have_text("3")
    expect(page.locator(".pager .range")).to_have_text("1\u20133 of 3")


# -- live -----------------------------------------------------------------------------------------


@pytest.mark.signals
def test_a_notification_sent_through_the_api_appears_live(herald_server: HeraldServer, new_page: Any) -> None:
    """LIVE over /api/signals. Runs whenever `herald serve` mounts the signals WebSocket; skipped
    (with this reason) only while it is not wired in bootstrap."""
    s = herald_server
    if not s.signals_mounted():
        reason = "/api/signals is not mounted in `herald serve` (signals not wired in bootstrap)"
        if os.environ.get("HERALD_REQUIRE_SIGNALS") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    page = open_inbox(new_page, s, "bob")
    other_tab = open_inbox(new_page, s, "bob")
    for p in (page, other_tab):
        expect(p.locator("#live-status")).to_have_attribute("data-state", "live")
        expect(p.locator(".empty h2")).to_have_text("You are all caught up")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_timeout(300)  # let the server register the subscriptions

    s.send(ref("bob"), title="Build 42 is red", description="3 tests failed.", severity="high", topic="builds")

    expect(page.locator(".item .title-text")).to_have_text(["Build 42 is red"])
    expect(page.locator("#unread-badge")).to_have_text("1")
    expect(page).to_have_title("(1) Inbox · Herald")
    toast = page.locator(".toast").filter(has_text="Build 42 is red")
    expect(toast).to_be_visible()
    expect(toast).to_have_class(re.compile("sev-high"))
    expect(other_tab.locator(".item .title-text")).to_have_text(["Build 42 is red"])
    assert page.evaluate("window.__sameDocument") is True  # no reload happened

    row(page, "Build 42 is red").get_by_role("button", name="Mark as read: Build 42 is red").click()
    expect(page.locator(".item")).to_have_count(0)
    expect(page.locator("#unread-badge")).to_be_hidden()
    expect(page).to_have_title("Inbox · Herald")
    # The other tab follows through the notification_read signal.
    expect(other_tab.locator("#unread-badge")).to_be_hidden()
    expect(other_tab.locator(".item")).to_have_count(0)
    assert status(s, "bob") == {"unread": 0, "read": 1}

    # A burst of arrivals is summed up in one notice instead of a wall of them.
    for button in page.locator(".toast").get_by_role("button", name="Dismiss").all():
        button.click()
    expect(page.locator(".toast")).to_have_count(0)
    for i in range(6):
        s.send(ref("bob"), title=f"Burst {i}", severity="critical" if i == 4 else "low")
    expect(page.locator(".item")).to_have_count(6)
    expect(page.locator(".toast:not(.leaving) .toast-title")).to_have_text(["6 new notifications"])
    expect(page.locator(".toast:not(.leaving)")).to_have_class(re.compile("sev-critical"))
    page.locator(".toast:not(.leaving)").get_by_role("button", name="Show").click()
    expect(page.locator("#unread-badge")).to_have_text("6")


def test_without_signals_the_page_polls_and_still_updates(herald_server: HeraldServer, new_page: Any) -> None:
    """The fallback: with signals unavailable the page checks /status (every 30 s; 1 s here). Also
    the desktop notifications, once the person turned them on and the browser allows them."""
    s = herald_server
    page = new_page()
    page.context.grant_permissions(["notifications"], origin=s.base)
    page.add_init_script(_NOTIFICATION_SPY + "try { localStorage.setItem('herald.signals', 'off');"
                         " localStorage.setItem('herald.pollSeconds', '1'); } catch (e) {}")
    page.goto(s.base + "/")
    page.locator(f"[data-ref='{ref('carol')}']").click()
    wait_loaded(page)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "polling")
    expect(page.locator("#live-status")).to_have_text("Not live")

    page.get_by_role("link", name="Settings").click()
    desktop = page.get_by_role("switch", name="Desktop notifications")
    expect(desktop).not_to_be_checked()
    desktop.check()
    expect(desktop).to_be_checked()
    page.get_by_role("link", name="Inbox").click()
    wait_loaded(page)
    page.evaluate("window.__sameDocument = true")

    [sent] = s.send(ref("carol"), title="Quota at 90 %", description="Storage bucket logs-eu.", topic="quotas")

    expect(page.locator(".item .title-text")).to_have_text(["Quota at 90 %"])
    expect(page.locator("#unread-badge")).to_have_text("1")
    expect(page).to_have_title("(1) Inbox · Herald")
    expect(page.locator(".toast").filter(has_text="Quota at 90 %")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True
    notes = page.evaluate("window.__notes")
    assert notes == [{"title": "Quota at 90 %", "body": "Storage bucket logs-eu.", "tag": sent["id"]}]


# Records desktop notifications instead of showing them.
_NOTIFICATION_SPY = """
window.__notes = [];
(() => {
  const Real = window.Notification;
  if (!Real) return;
  class Spy {
    constructor(title, options = {}) { window.__notes.push({ title, body: options.body, tag: options.tag }); }
    addEventListener() {}
    close() {}
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
  }
  window.Notification = Spy;
})();
"""


# -- actions --------------------------------------------------------------------------------------


def test_mark_read_unread_save_select_several_and_mark_all(herald_server: HeraldServer, new_page: Any) -> None:
    s = herald_server
    for title in ("Alpha", "Bravo", "Charlie"):
        s.send(ref("dave"), title=title, topic="letters")
    page = open_inbox(new_page, s, "dave")
    assert titles(page) == ["Charlie", "Bravo", "Alpha"]

    row(page, "Alpha").get_by_role("button", name="Mark as read: Alpha").click()
    expect(page.locator(".item .title-text")).to_have_text(["Charlie", "Bravo"])
    expect(page.locator(".seg[data-view=read] .count")).to_have_text("1")

    bulk_read = page.get_by_role("button", name="Mark selected as read")
    expect(bulk_read).to_be_disabled()
    row(page, "Bravo").get_by_role("checkbox").check()
    row(page, "Charlie").get_by_role("checkbox").check()
    expect(page.locator(".selection-text")).to_have_text("2 selected")
    bulk_read.click()
    expect(page.locator(".empty h2")).to_have_text("You are all caught up")
    assert status(s, "dave") == {"unread": 0, "read": 3}

    page.locator(".seg[data-view=read]").click()
    assert titles(page) == ["Charlie", "Bravo", "Alpha"]
    assert "view=read" in page.url
    row(page, "Alpha").get_by_role("checkbox").check()
    page.get_by_role("button", name="Mark selected as unread").click()
    expect(page.locator(".item .title-text")).to_have_text(["Charlie", "Bravo"])
    expect(page.locator("#unread-badge")).to_have_text("1")

    row(page, "Bravo").get_by_role("button", name="Save: Bravo").click()
    expect(row(page, "Bravo").locator(".chip-saved")).to_be_visible()
    page.locator(".seg[data-view=saved]").click()
    assert titles(page) == ["Bravo"]
    page.get_by_role("checkbox", name="Select all on this page").check()
    page.get_by_role("button", name="Unsave selected").click()
    expect(page.locator(".empty h2")).to_have_text("Nothing saved")

    page.locator(".seg[data-view=unread]").click()
    assert titles(page) == ["Alpha"]
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.locator(".empty h2")).to_have_text("You are all caught up")
    expect(page.locator("#unread-badge")).to_be_hidden()
    # Undo puts them back.
    page.locator(".toast:not(.leaving)").get_by_role("button", name="Undo").click()
    expect(page.locator(".item .title-text")).to_have_text(["Alpha"])
    assert status(s, "dave") == {"unread": 1, "read": 2}


def test_filters_search_sort_and_pages(herald_server: HeraldServer, new_page: Any) -> None:
    s = herald_server
    sent = [
        ("Build 1 passed", "builds", "low", "All green."),
        ("Build 2 failed", "builds", "high", "Flaky kumquat test."),
        ("Deploy to staging", "deploys", "normal", None),
        ("Deploy to prod failed", "deploys", "critical", "Rolled back."),
        ("Review requested", "reviews", "normal", None),
    ]
    for title, topic, severity, description in sent:
        s.send(ref("erin"), title=title, topic=topic, severity=severity,
               **({"description": description} if description else {}))
    page = open_inbox(new_page, s, "erin")
    assert len(titles(page)) == 5

    expect(page.locator("#filter-topic option")).to_have_text(["All topics", "builds", "deploys", "reviews"])
    page.locator("#filter-topic").select_option("deploys")
    expect(page.locator(".item .title-text")).to_have_text(["Deploy to prod failed", "Deploy to staging"])
    assert "topic=deploys" in page.url
    page.locator("#filter-severity").select_option("high")
    expect(page.locator(".item .title-text")).to_have_text(["Deploy to prod failed"])
    # Filters live in the URL: a reload shows the same.
    page.reload()
    wait_loaded(page)
    expect(page.locator(".item .title-text")).to_have_text(["Deploy to prod failed"])
    expect(page.locator("#filter-severity")).to_have_value("high")

    page.get_by_role("button", name="Clear filters").first.click()
    expect(page.locator(".item")).to_have_count(5)
    page.get_by_role("searchbox", name="Search notifications").fill("KUMQUAT")
    expect(page.locator(".item .title-text")).to_have_text(["Build 2 failed"])
    page.get_by_role("searchbox", name="Search notifications").fill("zzz-nothing")
    expect(page.locator(".empty h2")).to_have_text("No matches")
    page.get_by_role("searchbox", name="Search notifications").fill("")
    expect(page.locator(".item")).to_have_count(5)

    page.locator("#filter-sort").select_option("oldest")
    expect(page.locator(".item .title-text").first).to_have_text("Build 1 passed")
    page.locator("#filter-sort").select_option("topic")
    expect(page.locator(".item .chip-topic").last).to_have_text("reviews")
    page.locator("#filter-sent").select_option("24h")
    expect(page.locator(".item")).to_have_count(5)
    page.locator("#filter-sent").select_option("date")
    page.locator("input[type=date]").fill("2999-01-01")
    expect(page.locator(".empty h2")).to_have_text("No matches")
    page.get_by_role("button", name="Clear filters").first.click()

    # Clicking a topic chip filters by it.
    row(page, "Review requested").locator(".chip-topic").click()
    expect(page.locator(".item .title-text")).to_have_text(["Review requested"])
    page.get_by_role("button", name="Clear filters").first.click()

    page.evaluate("localStorage.setItem('herald.toasts', 'off')")  # no notices over the pager
    for i in range(8):
        s.send(ref("erin"), title=f"Extra {i}", topic="extra")
    page.locator("#filter-sort").select_option("newest")
    page.locator("#filter-size").select_option("10")
    expect(page.locator(".pager .range")).to_have_text("1\u201310 of 13")
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(page.locator(".pager .range")).to_have_text("11\u201313 of 13")
    expect(page.locator(".item .title-text")).to_have_text(["Deploy to staging", "Build 2 failed", "Build 1 passed"])
    assert "page=2" in page.url


def test_deep_link_and_opening_a_link_marks_read(herald_server: HeraldServer, new_page: Any) -> None:
    s = herald_server
    target = f"{s.base}/healthz"
    [linked] = s.send(ref("frank"), title="Incident INC-7 opened", description="Checkout latency is up.",
                      link=target, severity="critical", topic="incidents")
    [plain] = s.send(ref("frank"), title="Your access request was approved", topic="access")
    page = open_inbox(new_page, s, "frank", path=f"/?id={linked['id']}")

    detail = page.locator(".detail")
    expect(detail.locator("h2")).to_have_text("Incident INC-7 opened")
    expect(detail).to_contain_text("Checkout latency is up.")
    expect(detail).to_contain_text("incidents")
    expect(detail).to_contain_text("Unread")
    with page.expect_popup() as popup:
        detail.get_by_role("link", name="Open link").click()
    assert popup.value.url == target
    expect(detail).to_contain_text("Read")
    expect(page.locator(".item .title-text")).to_have_text(["Your access request was approved"])
    assert status(s, "frank") == {"unread": 1, "read": 1}

    # Escape closes it and the URL drops the id; a title without a link opens the detail instead.
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    assert "id=" not in page.url
    row(page, "Your access request was approved").locator(".title").click()
    expect(detail.locator("h2")).to_have_text("Your access request was approved")
    assert f"id={plain['id']}" in page.url
    page.go_back()
    expect(detail).to_be_hidden()

    new_page.allow("status of 404")  # the unknown id below
    page.goto(s.base + "/?id=00000000-0000-4000-8000-000000000000")
    expect(page.locator(".detail h2")).to_have_text("Notification not found")


# -- settings -------------------------------------------------------------------------------------


def test_a_setting_turned_off_stops_the_next_send(herald_server: HeraldServer, new_page: Any) -> None:
    s = herald_server
    s.send(ref("grace"), title="Nightly build passed", topic="builds")
    s.send(ref("grace"), title="Deployed v1", topic="deploys")
    page = open_inbox(new_page, s, "grace")
    page.get_by_role("link", name="Settings").click()
    expect(page).to_have_title("(2) Settings · Herald")
    origin_switch = page.get_by_role("switch", name=f"Inbox: {ORIGIN}", exact=True)
    expect(origin_switch).to_be_checked()
    page.get_by_role("button", name=re.compile("web-tests")).click()
    builds = page.get_by_role("switch", name=f"Inbox: {ORIGIN}, topic builds")
    deploys = page.get_by_role("switch", name=f"Inbox: {ORIGIN}, topic deploys")
    expect(builds).to_be_checked()

    builds.uncheck()
    expect(page.locator(".save-status")).to_have_text("Saved. Applies to the next notification.")
    expect(builds).not_to_be_checked()
    assert s.send(ref("grace"), title="Nightly build failed", topic="builds") == []
    assert len(s.send(ref("grace"), title="Deployed v2", topic="deploys")) == 1

    page.locator(".save-status").evaluate("el => el.textContent = ''")
    origin_switch.uncheck()
    expect(page.locator(".save-status")).to_have_text("Saved. Applies to the next notification.")
    expect(deploys).to_be_disabled()
    assert s.send(ref("grace"), title="Deployed v3", topic="deploys") == []

    page.get_by_role("link", name="Inbox").click()
    expect(page.locator(".item .title-text")).to_have_text(["Deployed v2", "Deployed v1", "Nightly build passed"])

    # Back on: the sender and all its topics.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("switch", name=f"Inbox: {ORIGIN}", exact=True).check()
    expect(page.locator(".save-status")).to_have_text("Saved. Applies to the next notification.")
    expect(page.get_by_role("switch", name=f"Inbox: {ORIGIN}, topic builds")).to_be_checked()
    assert len(s.send(ref("grace"), title="Nightly build passed again", topic="builds")) == 1
    settings = s.user_get(ref("grace"), "/settings")
    web = next(c for c in settings["channels"] if c["id"] == "Web")
    origin = next(o for o in web["origins"] if o["id"] == ORIGIN)
    assert origin["enabled"] is True and all(t["enabled"] for t in origin["topics"])


# -- keyboard and small screens -------------------------------------------------------------------


def test_keyboard_only_use(herald_server: HeraldServer, new_page: Any) -> None:
    s = herald_server
    for title in ("One", "Two", "Three"):
        s.send(ref("henry"), title=title)
    page = open_inbox(new_page, s, "henry")
    page.locator("body").click(position={"x": 5, "y": 300})

    page.keyboard.press("/")
    expect(page.get_by_role("searchbox", name="Search notifications")).to_be_focused()
    page.keyboard.press("Escape")  # back to the list
    page.keyboard.press("j")
    expect(row(page, "Three").locator(".title")).to_be_focused()
    page.keyboard.press("j")
    expect(row(page, "Two").locator(".title")).to_be_focused()
    page.keyboard.press("x")
    expect(row(page, "Two").get_by_role("checkbox")).to_be_checked()
    page.keyboard.press("k")
    page.keyboard.press("r")
    expect(page.locator(".item .title-text")).to_have_text(["Two", "One"])
    expect(row(page, "Two").locator(".title")).to_be_focused()
    page.keyboard.press("s")
    expect(row(page, "Two").locator(".chip-saved")).to_be_visible()
    page.keyboard.press("Shift+?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()
    page.keyboard.press("g")
    page.keyboard.press("s")
    expect(page.locator("#settings-view")).to_be_visible()

    # The first Tab reaches the skip link.
    page.goto(s.base + "/")
    wait_loaded(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_screenshots_light_dark_settings_and_phone(herald_server: HeraldServer, new_page: Any,
                                                   artifacts: Path) -> None:
    s = herald_server
    s.send(ref("alice"), title="Weekly cost report is ready", severity="low", topic="reports")
    s.send(None, title="Maintenance window on Saturday 02:00-04:00 UTC",
           description="The developer portal is read-only during the database upgrade.", topic="announcements")
    s.send(ref("alice"), title="Pull request #128 needs your review",
           description="bob asked you to review: add a retry budget to the webhook sender.",
           link="/catalog/default/component/notifications", severity="high", topic="reviews")
    [failed] = s.send(ref("alice"), title="Deploy of payments-api failed",
                      description='Production deployment failed at step migrate: relation "ledger" already exists.',
                      link="https://ci.example.test/runs/4711", severity="critical", topic="deployments")
    s.send(ref("alice"), title="Template executed: create-service",
           description="Your new service skeleton-svc was created.", link="/create/tasks/123", topic="scaffolder")
    token = s.user_token(ref("alice"))
    r = httpx.post(f"{s.base}/api/notifications/notifications/update", json={"ids": [failed["id"]], "saved": True},
                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200

    light = open_inbox(new_page, s, "alice", color_scheme="light")
    light.mouse.move(0, 0)
    light.screenshot(path=str(artifacts / "inbox-light.png"), full_page=True)
    assert _background(light) == "rgb(244, 245, 248)"

    light.get_by_role("link", name="Settings").click()
    light.get_by_role("button", name=re.compile("web-tests")).click()
    expect(light.locator(".topic-row").first).to_be_visible()
    light.screenshot(path=str(artifacts / "settings.png"), full_page=True)

    dark = open_inbox(new_page, s, "alice", color_scheme="dark")
    dark.mouse.move(0, 0)
    dark.screenshot(path=str(artifacts / "inbox-dark.png"), full_page=True)
    assert _background(dark) == "rgb(14, 17, 22)"
    # The theme button overrides the system choice.
    dark.get_by_role("button", name="Switch to light theme").click()
    assert _background(dark) == "rgb(244, 245, 248)"

    phone = open_inbox(new_page, s, "alice", viewport={"width": 390, "height": 844}, device_scale_factor=2,
                       is_mobile=True, has_touch=True)
    phone.screenshot(path=str(artifacts / "inbox-phone.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(phone.locator("#unread-badge")).to_be_visible()
    for name in ("inbox-light", "inbox-dark", "settings", "inbox-phone"):
        assert (artifacts / f"{name}.png").stat().st_size > 10_000


def _background(page: Page) -> str:
    value: str = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return value
