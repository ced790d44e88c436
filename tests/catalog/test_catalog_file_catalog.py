from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from herald.catalog import CatalogLoadError, FileCatalog, demo_org_path, resolve_recipients
from herald.core import tasks

Write = Callable[[str, str], Path]

TEAM = """
kind: Group
metadata:
  name: team
  annotations: {slack.com/bot-notify: C123}
spec: {members: [alice, bob]}
---
kind: Group
metadata: {name: org}
spec: {children: [team], members: [zed]}
---
kind: User
metadata: {name: bob}
spec: {profile: {displayName: Bob, email: bob@example.com}, memberOf: [org]}
---
kind: User
metadata:
  name: alice
  annotations: {slack.com/bot-notify: U999}
spec: {profile: {displayName: Alice, email: alice@example.com}}
---
kind: User
metadata: {name: zed}
spec: {profile: {email: shared@example.com}}
---
kind: User
metadata: {name: yan}
spec: {profile: {email: shared@example.com}}
---
kind: User
metadata: {name: xavier}
"""

WITH_CAROL = TEAM.replace("members: [alice, bob]", "members: [alice, bob, carol]")


def team_members(c: FileCatalog) -> list[str]:
    return resolve_recipients(c.snapshot, ["group:default/team"])


async def wait_for(predicate: Callable[[], bool], limit_s: float = 5.0) -> None:
    for _ in range(int(limit_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_lookups(write: Write) -> None:
    c = FileCatalog.from_files([write("org.yaml", TEAM)], strict=True)
    alice = c.user("User:Default/ALICE")
    assert alice is not None
    assert (alice.ref, alice.display_name, alice.email) == (
        "user:default/alice", "Alice", "alice@example.com")
    assert alice.annotations == {"slack.com/bot-notify": "U999"}
    assert c.user("user:default/nobody") is None
    assert c.user("alice") is None
    assert [u.ref for u in c.users()] == [
        "user:default/alice", "user:default/bob", "user:default/xavier", "user:default/yan",
        "user:default/zed"]
    assert c.user_emails() == ["alice@example.com", "bob@example.com", "shared@example.com"]
    team = c.entity("group:team")
    assert team is not None and team.annotations["slack.com/bot-notify"] == "C123"
    assert c.entity("component:default/none") is None


def test_ownership_refs_are_direct_groups_only(write: Write) -> None:
    c = FileCatalog.from_files([write("org.yaml", TEAM)], strict=True)
    assert c.ownership_refs("user:default/bob") == [
        "user:default/bob", "group:default/org", "group:default/team"]
    assert c.ownership_refs("user:default/alice") == ["user:default/alice", "group:default/team"]
    assert c.ownership_refs("User:default/Xavier") == ["user:default/xavier"]
    assert c.ownership_refs("user:default/ghost") == ["user:default/ghost"]
    with pytest.raises(ValueError):
        c.ownership_refs("ghost")


def test_from_files_strict_raises_and_lenient_keeps_valid_entities(write: Write,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = write("org.yaml", TEAM + "---\nkind: User\nmetadata: {}\n")
    with pytest.raises(CatalogLoadError) as info:
        FileCatalog.from_files([path], strict=True)
    assert "metadata.name" in str(info.value)
    with caplog.at_level(logging.ERROR, logger="herald.catalog"):
        c = FileCatalog.from_files([path])
    assert len(c.errors) == 1
    assert c.user("user:default/alice") is not None
    assert "metadata.name" in caplog.text


async def test_reload_sees_new_member(write: Write) -> None:
    path = write("org.yaml", TEAM)
    c = FileCatalog.from_files([path], strict=True)
    before = c.snapshot
    assert await c.resolve(["group:default/team"], []) == ["user:default/alice", "user:default/bob"]
    write("org.yaml", WITH_CAROL)
    assert await c.reload() is True
    assert c.snapshot is not before
    assert await c.resolve(["group:default/team"], []) == [
        "user:default/alice", "user:default/bob", "user:default/carol"]


async def test_broken_edit_keeps_the_old_snapshot(write: Write, caplog: pytest.LogCaptureFixture) -> None:
    path = write("org.yaml", TEAM)
    c = FileCatalog.from_files([path], strict=True)
    before = c.snapshot
    write("org.yaml", WITH_CAROL + "---\nkind: User\nmetadata: {name: [oops]}\n")
    with caplog.at_level(logging.ERROR, logger="herald.catalog"):
        assert await c.reload() is False
    assert c.snapshot is before
    assert len(c.errors) == 1 and "metadata.name" in c.errors[0].message
    assert "keeping the previous catalog" in caplog.text
    assert await c.resolve(["group:default/team"], []) == ["user:default/alice", "user:default/bob"]
    write("org.yaml", WITH_CAROL)
    assert await c.reload() is True
    assert c.errors == []
    assert "user:default/carol" in await c.resolve(["group:default/team"], [])


async def test_deleted_file_keeps_the_old_snapshot(write: Write) -> None:
    path = write("org.yaml", TEAM)
    c = FileCatalog.from_files([path], strict=True)
    path.unlink()
    assert await c.reload() is False
    assert c.user("user:default/alice") is not None


async def test_watch_reloads_on_change_and_is_cancellable(write: Write) -> None:
    path = write("org.yaml", TEAM)
    c = FileCatalog.from_files([path], strict=True)
    first = c.snapshot
    task = tasks.spawn(c.watch(0.02))
    try:
        await asyncio.sleep(0.15)
        assert c.snapshot is first  # nothing changed: no reload
        assert not await c.changed()
        write("org.yaml", WITH_CAROL)
        await wait_for(lambda: "user:default/carol" in team_members(c))
        assert c.snapshot is not first
        # a broken edit is noticed but not applied; fixing it is applied
        second = c.snapshot
        write("org.yaml", TEAM + "---\n- broken\n")
        await wait_for(lambda: bool(c.errors))
        assert c.snapshot is second
        write("org.yaml", TEAM)
        await wait_for(lambda: "user:default/carol" not in team_members(c))
        assert c.errors == []
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


async def test_watch_follows_location_targets(write: Write) -> None:
    root = write("root.yaml", """
kind: Location
metadata: {name: org}
spec: {targets: [./groups.yaml, ./users/*.yaml]}
""")
    write("groups.yaml", "kind: Group\nmetadata: {name: team}\n")
    write("users/alice.yaml", "kind: User\nmetadata: {name: alice}\nspec: {memberOf: [team]}\n")
    c = FileCatalog.from_files([root], strict=True)
    assert not await c.changed()
    write("groups.yaml", "kind: Group\nmetadata: {name: team}\nspec: {members: [bob]}\n")
    assert await c.changed()
    assert await c.reload()
    assert await c.resolve(["group:team"], []) == ["user:default/alice", "user:default/bob"]
    write("users/carol.yaml", "kind: User\nmetadata: {name: carol}\nspec: {memberOf: [team]}\n")
    assert await c.changed()  # a new file matching the glob
    assert await c.reload()
    assert "user:default/carol" in await c.resolve(["group:team"], [])


async def test_demo_org() -> None:
    c = FileCatalog.demo()
    assert c.errors == [] and c.warnings == []
    assert demo_org_path().is_file()
    assert len(c.users()) == 8
    assert all(u.email and u.email.endswith("@example.com") for u in c.users())
    assert c.user("user:default/alice") is not None
    everyone = await c.resolve(["group:default/example-org"], [])
    assert sorted(everyone) == sorted(u.ref for u in c.users())
    assert len(await c.resolve(["group:default/engineering"], [])) == 6
    assert await c.resolve(["component:default/notifications"], []) == [
        "user:default/alice", "user:default/bob", "user:default/carol"]
    assert len(await c.resolve(["system:default/developer-portal"], [])) == 6
