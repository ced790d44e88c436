from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from herald.catalog import check_files, generate_org, load_entities_from_text, resolve_recipients
from herald.catalog.snapshot import CatalogSnapshot


@pytest.mark.parametrize(("users", "groups"), [(300, 20), (50, 1), (40, 2), (7, 4), (0, 5), (1000, 100)])
def test_round_trip(users: int, groups: int) -> None:
    text = generate_org(users, groups, seed=3)
    load = load_entities_from_text(text)
    assert load.errors == [] and load.warnings == []
    snap = CatalogSnapshot(load)
    docs = [d for d in yaml.safe_load_all(text) if d]
    n_users, n_groups, n_others = snap.counts()
    assert (n_users, n_groups) == (users, groups)
    assert n_others == sum(1 for d in docs if d["kind"] not in ("User", "Group")) > 0
    roots = [e.ref for e in snap.entities.values() if e.type == "organization"]
    assert len(roots) == 1
    everyone = resolve_recipients(snap, roots)
    assert sorted(everyone) == sorted(snap.users)
    assert all(u.email and u.display_name for u in snap.users.values())
    assert len(set(snap.user_emails)) == users
    # every non-root group hangs under the root, and teams own the components
    for e in snap.entities.values():
        if e.kind == "Group" and e.ref not in roots:
            assert e.targets("childOf"), e.ref
        if e.kind == "Component":
            assert snap.owner[e.ref] in snap.group_users


def test_generated_org_checks_clean(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(generate_org(500, 30, seed=1), encoding="utf-8")
    report = check_files([path])
    assert report.ok and report.warnings == []
    assert max(report.group_members.values()) == 500


def test_deterministic_per_seed() -> None:
    assert generate_org(100, 10, seed=5) == generate_org(100, 10, seed=5)
    assert generate_org(100, 10, seed=5) != generate_org(100, 10, seed=6)


def test_shape_has_departments_and_teams() -> None:
    snap = CatalogSnapshot(load_entities_from_text(generate_org(200, 101)))
    types = [e.type for e in snap.entities.values() if e.kind == "Group"]
    assert types.count("organization") == 1
    assert types.count("department") == 10
    assert types.count("team") == 90


@pytest.mark.parametrize(("users", "groups"), [(10, 0), (-1, 3)])
def test_rejects_bad_sizes(users: int, groups: int) -> None:
    with pytest.raises(ValueError):
        generate_org(users, groups)
