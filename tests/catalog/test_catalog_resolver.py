from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from herald.catalog import FileCatalog, generate_org, load_entities_from_text, resolve_recipients
from herald.catalog.snapshot import CatalogSnapshot
from herald.core.ports import RecipientResolver


def catalog(text: str) -> FileCatalog:
    load = load_entities_from_text(text)
    assert load.errors == []
    return FileCatalog([], load)


SPEC_GROUPS = """
kind: Group
metadata: {name: parent_group}
spec: {members: [user:default/foo], children: [group:default/child_group]}
---
kind: Group
metadata: {name: child_group}
spec: {members: [user:default/bar, user:default/ignored]}
---
kind: Component
metadata: {name: user_owned}
spec: {owner: user:default/foo}
---
kind: Component
metadata: {name: group_owned}
spec: {owner: group:default/owner_group}
---
kind: Group
metadata: {name: owner_group}
spec: {members: [foo]}
"""


# -- spec §7.3 (upstream DefaultNotificationRecipientResolver.test.ts) -----------------------------

async def test_76_user_refs_pass_through_without_catalog_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = CatalogSnapshot.get

    def spy(self: CatalogSnapshot, ref: str) -> Any:
        calls.append(ref)
        return original(self, ref)

    monkeypatch.setattr(CatalogSnapshot, "get", spy)
    c = catalog(SPEC_GROUPS)
    assert await c.resolve(["user:foo", "user:ignored"], ["user:ignored"]) == ["user:foo"]
    assert calls == []


async def test_77_group_members_then_child_group_members_minus_excluded() -> None:
    c = catalog(SPEC_GROUPS)
    result = await c.resolve(["group:default/parent_group"], ["user:default/ignored"])
    assert result == ["user:default/foo", "user:default/bar"]


async def test_78_entity_owned_by_user() -> None:
    c = catalog(SPEC_GROUPS)
    assert await c.resolve(["component:default/user_owned"], []) == ["user:default/foo"]


async def test_79_entity_owned_by_group() -> None:
    c = catalog(SPEC_GROUPS)
    assert await c.resolve(["component:default/group_owned"], []) == ["user:default/foo"]


async def test_80_entity_owned_by_group_with_excluded_member() -> None:
    c = catalog(SPEC_GROUPS)
    assert await c.resolve(["component:default/group_owned"], ["user:default/foo"]) == []


# -- further §3.7 semantics ------------------------------------------------------------------------

async def test_unparseable_ref_raises() -> None:
    c = catalog(SPEC_GROUPS)
    with pytest.raises(ValueError):
        await c.resolve(["alice"], [])
    with pytest.raises(ValueError):
        await c.resolve(["group:default/parent_group", "nokind"], [])


async def test_user_refs_are_kept_as_given_and_deduplicated_exactly() -> None:
    c = catalog(SPEC_GROUPS)
    result = await c.resolve(["User:Default/Foo", "user:foo", "user:foo", "group:default/owner_group"], [])
    assert result == ["User:Default/Foo", "user:foo", "user:default/foo"]


async def test_other_refs_are_looked_up_case_insensitively_and_unknown_ones_ignored() -> None:
    c = catalog(SPEC_GROUPS)
    result = await c.resolve(["Group:Default/Child_Group", "group:default/nope", "component:x/y"], [])
    assert result == ["user:default/bar", "user:default/ignored"]


async def test_exclusion_is_exact_string() -> None:
    c = catalog(SPEC_GROUPS)
    excluded = ["group:default/Child_Group", "user:default/Foo"]
    result = await c.resolve(["group:default/parent_group"], excluded)
    assert result == ["user:default/foo", "user:default/bar", "user:default/ignored"]


async def test_exclusion_is_checked_again_on_the_found_entity_ref() -> None:
    c = catalog(SPEC_GROUPS)
    assert await c.resolve(["Group:Default/Child_Group"], ["group:default/child_group"]) == []
    assert await c.resolve(["Group:Default/Child_Group"], ["Group:Default/Child_Group"]) == []
    assert await c.resolve(["Group:Default/Child_Group"], []) != []


async def test_excluded_owner_group_is_not_expanded() -> None:
    c = catalog(SPEC_GROUPS)
    assert await c.resolve(["component:default/group_owned"], ["group:default/owner_group"]) == []


async def test_parents_are_not_expanded(conformance_org: Path) -> None:
    c = FileCatalog.from_files([conformance_org], strict=True)
    assert await c.resolve(["group:default/product"], []) == [
        "user:default/carol", "user:default/heidi", "user:default/ivan"]


async def test_only_the_first_owner_and_users_of_group_members_count() -> None:
    c = catalog("""
kind: Group
metadata: {name: g}
spec: {members: [group:default/other, alice]}
---
kind: Group
metadata: {name: other}
spec: {members: [bob]}
""")
    assert await c.resolve(["group:default/g"], []) == ["user:default/alice"]


@pytest.mark.parametrize("text", [
    # a -> b -> c -> a
    """
kind: Group
metadata: {name: a}
spec: {children: [b], members: [u1]}
---
kind: Group
metadata: {name: b}
spec: {children: [c], members: [u2]}
---
kind: Group
metadata: {name: c}
spec: {children: [a], members: [u3]}
""",
    # a is its own child, via parent and children both
    """
kind: Group
metadata: {name: a}
spec: {parent: c, children: [a, b], members: [u1]}
---
kind: Group
metadata: {name: b}
spec: {parent: b, members: [u2]}
---
kind: Group
metadata: {name: c}
spec: {parent: a, members: [u3]}
""",
])
async def test_cycles_terminate(text: str) -> None:
    c = catalog(text)
    result = await c.resolve(["group:default/a"], [])
    assert sorted(result) == ["user:default/u1", "user:default/u2", "user:default/u3"]
    assert result[0] == "user:default/u1"


# -- the conformance org ---------------------------------------------------------------------------

ALL10 = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


@pytest.mark.parametrize(("refs", "excluded", "expected"), [
    (["group:default/acme-corp"], [], ALL10),
    (["group:default/engineering"], [], ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]),
    (["group:default/team-backend"], [], ["alice", "bob", "carol"]),
    (["component:default/notifications-service"], [], ["alice", "bob", "carol"]),
    (["system:default/developer-portal"], [], ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]),
    (["group:default/engineering"], ["group:default/team-backend"], ["dave", "erin", "frank", "grace"]),
    (["group:default/acme-corp"], ["group:default/engineering", "user:default/judy"],
     ["carol", "heidi", "ivan"]),
])
async def test_conformance_org(conformance_org: Path, refs: list[str], excluded: list[str],
                               expected: list[str]) -> None:
    c = FileCatalog.from_files([conformance_org], strict=True)
    result = await c.resolve(refs, excluded)
    assert len(result) == len(set(result))
    assert sorted(result) == [f"user:default/{u}" for u in expected]


async def test_breadth_first_order(conformance_org: Path) -> None:
    c = FileCatalog.from_files([conformance_org], strict=True)
    result = await c.resolve(["group:default/acme-corp"], [])
    # round 1: acme-corp's own member; round 2: engineering, product; round 3: the teams
    assert result[0] == "user:default/judy"
    assert result[1:5] == [
        "user:default/grace", "user:default/carol", "user:default/heidi", "user:default/ivan"]
    assert result[5:] == ["user:default/alice", "user:default/bob", "user:default/dave",
                          "user:default/erin", "user:default/frank"]


async def test_file_catalog_is_a_recipient_resolver(conformance_org: Path) -> None:
    resolver: RecipientResolver = FileCatalog.from_files([conformance_org])
    assert await resolver.resolve(["group:default/team-frontend"], []) == [
        "user:default/dave", "user:default/erin", "user:default/frank"]


def test_large_nested_org_loads_and_resolves_fast(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(generate_org(10_000, 100, seed=7), encoding="utf-8")
    started = time.perf_counter()
    c = FileCatalog.from_files([path], strict=True)
    loaded = time.perf_counter()
    result = resolve_recipients(c.snapshot, ["group:default/acme"], [])
    resolved = time.perf_counter()
    assert len(result) == 10_000 == len(set(result))
    # Generous bounds (measured ~0.7 s and ~2 ms on 2 cores); they catch quadratic regressions.
    assert loaded - started < 5.0
    assert resolved - loaded < 0.25
