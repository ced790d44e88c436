from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from herald.catalog.entities import LoadResult, load_entities, load_entities_from_text

Write = Callable[[str, str], Path]


def load(text: str) -> LoadResult:
    return load_entities_from_text(text, file="org.yaml")


def rel(result: LoadResult, ref: str, relation: str) -> tuple[str, ...]:
    return result.entities[ref].targets(relation)


def test_member_of_gives_both_directions() -> None:
    r = load("""
kind: Group
metadata: {name: team}
---
kind: User
metadata: {name: alice}
spec: {memberOf: [team]}
""")
    assert r.errors == []
    assert rel(r, "user:default/alice", "memberOf") == ("group:default/team",)
    assert rel(r, "group:default/team", "hasMember") == ("user:default/alice",)


def test_group_members_give_both_directions_and_union_with_member_of() -> None:
    r = load("""
kind: Group
metadata: {name: team}
spec: {members: [bob, alice]}
---
kind: User
metadata: {name: alice}
spec: {memberOf: [team]}
---
kind: User
metadata: {name: bob}
---
kind: User
metadata: {name: carol}
spec: {memberOf: [group:default/team]}
""")
    assert r.errors == []
    assert rel(r, "group:default/team", "hasMember") == (
        "user:default/alice", "user:default/bob", "user:default/carol")
    assert rel(r, "user:default/bob", "memberOf") == ("group:default/team",)
    assert rel(r, "user:default/alice", "memberOf") == ("group:default/team",)


def test_parent_and_children_give_both_directions() -> None:
    r = load("""
kind: Group
metadata: {name: org}
spec: {children: [eng]}
---
kind: Group
metadata: {name: eng}
---
kind: Group
metadata: {name: ops}
spec: {parent: org}
""")
    assert rel(r, "group:default/org", "parentOf") == ("group:default/eng", "group:default/ops")
    assert rel(r, "group:default/eng", "childOf") == ("group:default/org",)
    assert rel(r, "group:default/ops", "childOf") == ("group:default/org",)
    assert rel(r, "group:default/eng", "parentOf") == ()


def test_owner_defaults_to_group_kind_and_own_namespace() -> None:
    r = load("""
kind: Component
metadata: {name: svc, namespace: payments}
spec: {owner: team}
---
kind: API
metadata: {name: api}
spec: {owner: user:alice}
---
kind: Resource
metadata: {name: db}
spec: {owner: group:infra/dba}
---
kind: Group
metadata: {name: team, namespace: payments}
""")
    assert r.errors == []
    assert rel(r, "component:payments/svc", "ownedBy") == ("group:payments/team",)
    assert rel(r, "group:payments/team", "ownerOf") == ("component:payments/svc",)
    assert rel(r, "api:default/api", "ownedBy") == ("user:default/alice",)
    assert rel(r, "resource:default/db", "ownedBy") == ("group:infra/dba",)


def test_member_refs_default_to_the_entity_namespace() -> None:
    r = load("""
kind: User
metadata: {name: alice, namespace: ops}
spec: {memberOf: [oncall, group:default/everyone]}
---
kind: Group
metadata: {name: oncall, namespace: ops}
spec: {members: [bob], parent: sre}
""")
    assert rel(r, "user:ops/alice", "memberOf") == ("group:default/everyone", "group:ops/oncall")
    assert rel(r, "group:ops/oncall", "hasMember") == ("user:ops/alice", "user:ops/bob")
    assert rel(r, "group:ops/oncall", "childOf") == ("group:ops/sre",)


def test_refs_are_normalised_to_lower_case() -> None:
    r = load("""
kind: Group
metadata: {name: Team-A, namespace: Ops}
---
kind: User
metadata: {name: Alice, namespace: ops}
spec: {memberOf: [Group:OPS/TEAM-a]}
""")
    assert set(r.entities) == {"group:ops/team-a", "user:ops/alice"}
    assert rel(r, "group:ops/team-a", "hasMember") == ("user:ops/alice",)
    entity = r.entities["group:ops/team-a"]
    assert (entity.kind, entity.namespace, entity.name) == ("Group", "Ops", "Team-A")


def test_profile_and_annotations_are_kept() -> None:
    r = load("""
kind: User
metadata:
  name: alice
  annotations: {slack.com/bot-notify: U123}
spec:
  profile: {displayName: Alice A, email: alice@example.com}
---
kind: Group
metadata:
  name: team
  annotations: {slack.com/bot-notify: C999}
spec: {type: team, profile: {email: team@example.com}}
""")
    alice = r.entities["user:default/alice"]
    assert (alice.display_name, alice.email) == ("Alice A", "alice@example.com")
    assert alice.annotations == {"slack.com/bot-notify": "U123"}
    team = r.entities["group:default/team"]
    assert team.annotations["slack.com/bot-notify"] == "C999"
    assert (team.type, team.email) == ("team", "team@example.com")


def test_other_kinds_need_an_owner_and_empty_documents_are_skipped() -> None:
    r = load("""
---
---
kind: Domain
metadata: {name: d}
spec: {owner: team}
---
kind: Component
metadata: {name: ownerless}
spec: {type: service}
---
""")
    assert r.errors == []
    assert set(r.entities) == {"domain:default/d"}
    assert r.skipped == 1


def test_malformed_documents_are_reported_and_valid_ones_kept() -> None:
    r = load("""
kind: User
metadata: {name: ok}
---
- not a mapping
---
metadata: {name: nokind}
---
kind: User
spec: {}
---
kind: User
metadata: {namespace: x}
---
kind: User
metadata: {name: 42}
---
kind: User
metadata: {name: bad-member}
spec: {memberOf: team}
---
kind: Group
metadata: {name: bad-annotation, annotations: {flag: true}}
---
kind: Component
metadata: {name: bad-owner}
spec: {owner: "component:"}
---
kind: User
metadata: {name: OK}
""")
    assert set(r.entities) == {"user:default/ok"}
    by_doc = {e.document or 0: e for e in r.errors}
    assert sorted(by_doc) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert all(e.file == "org.yaml" for e in r.errors)
    assert "mapping" in by_doc[2].message
    assert "kind" in by_doc[3].message
    assert "metadata" in by_doc[4].message
    assert "metadata.name" in by_doc[5].message
    assert "metadata.name" in by_doc[6].message
    assert "spec.memberOf" in by_doc[7].message and by_doc[7].entity == "user:default/bad-member"
    assert "flag" in by_doc[8].message
    assert "spec.owner" in by_doc[9].message
    assert "duplicate" in by_doc[10].message
    assert "org.yaml document 7 (user:default/bad-member)" in str(by_doc[7])
    assert not r.ok


def test_rejected_entity_contributes_no_relations() -> None:
    r = load("""
kind: Group
metadata: {name: team}
---
kind: User
metadata: {name: alice}
spec: {memberOf: [team], profile: {email: 7}}
""")
    assert len(r.errors) == 1
    assert rel(r, "group:default/team", "hasMember") == ()


def test_yaml_syntax_error_names_file_and_document(write: Write) -> None:
    path = write("bad.yaml", """
kind: User
metadata: {name: alice}
---
kind: User
metadata: {name: [unclosed
""")
    r = load_entities([path])
    assert "user:default/alice" in r.entities
    assert len(r.errors) == 1
    assert r.errors[0].file == str(path) and r.errors[0].document == 2
    assert "invalid YAML" in r.errors[0].message


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    r = load_entities([tmp_path / "nope.yaml"])
    assert len(r.errors) == 1 and "cannot read" in r.errors[0].message
    assert r.entities == {}


def test_locations_are_followed(write: Write) -> None:
    write("users/alice.yaml", """
kind: User
metadata: {name: alice}
spec: {memberOf: [team]}
""")
    write("users/bob.yaml", """
kind: User
metadata: {name: bob}
spec: {memberOf: [team]}
""")
    write("groups.yaml", """
kind: Group
metadata: {name: team}
---
kind: Location
metadata: {name: back}
spec: {target: ./root.yaml}
""")
    root = write("root.yaml", """
kind: Location
metadata: {name: org}
spec:
  targets: [./groups.yaml, ./users/*.yaml, https://example.com/catalog-info.yaml]
""")
    r = load_entities([root])
    assert r.errors == []
    assert rel(r, "group:default/team", "hasMember") == ("user:default/alice", "user:default/bob")
    assert len(r.files) == 4  # root read once even though groups.yaml points back at it
    assert len(r.warnings) == 1 and "URL" in r.warnings[0].message
    assert len(r.globs) == 1


def test_missing_location_target_is_an_error(write: Write) -> None:
    root = write("root.yaml", """
kind: Location
metadata: {name: org}
spec: {target: missing.yaml}
""")
    r = load_entities([root])
    assert len(r.errors) == 1
    err = r.errors[0]
    assert err.file == str(root) and err.document == 1 and "missing.yaml" in err.message
