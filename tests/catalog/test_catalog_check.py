from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from herald.catalog import check_files, format_report

Write = Callable[[str, str], Path]

ORG = """
kind: Group
metadata: {name: org}
spec: {children: [team, ghost-team]}
---
kind: Group
metadata: {name: team}
spec: {parent: org, members: [alice, bob, group:default/org]}
---
kind: User
metadata: {name: alice}
spec: {profile: {email: alice@example.com}, memberOf: [team]}
---
kind: User
metadata: {name: bob}
spec: {memberOf: [nowhere]}
---
kind: Component
metadata: {name: svc}
spec: {owner: team}
---
kind: System
metadata: {name: sys}
spec: {owner: missing-group}
---
kind: Template
metadata: {name: tpl}
spec: {owner: component:default/svc}
---
kind: API
metadata: {name: ownerless}
spec: {type: openapi}
"""


def messages(issues: list[object]) -> str:
    return "\n".join(str(i) for i in issues)


def test_counts_members_and_warnings(write: Write) -> None:
    report = check_files([write("org.yaml", ORG)])
    assert report.ok
    assert (report.users, report.groups, report.others, report.skipped) == (2, 2, 3, 1)
    assert report.group_members == {"group:default/org": 2, "group:default/team": 2}
    text = messages(list(report.warnings))
    assert "spec.children refers to group:default/ghost-team, which is not in the catalog" in text
    assert "spec.memberOf refers to group:default/nowhere" in text
    assert "spec.owner refers to group:default/missing-group" in text
    assert "(user:default/bob): user has no spec.profile.email" in text
    assert "user:default/alice): user has no" not in text
    assert "spec.members refers to group:default/org, expected a user" in text
    assert "spec.owner refers to component:default/svc, expected a user or group" in text
    assert len(report.warnings) == 6


def test_errors_make_the_report_fail(write: Write) -> None:
    bad = write("bad.yaml", "kind: User\nmetadata: {name: carol}\nspec: {memberOf: 3}\n")
    report = check_files([write("org.yaml", ORG), bad])
    assert not report.ok
    assert len(report.errors) == 1 and report.errors[0].file == str(bad)
    out = format_report(report)
    assert "FAILED: 1 error(s)" in out
    assert "spec.memberOf" in out


def test_cycles_are_warned(write: Write) -> None:
    report = check_files([write("org.yaml", """
kind: Group
metadata: {name: a}
spec: {children: [b]}
---
kind: Group
metadata: {name: b}
spec: {children: [a]}
---
kind: Group
metadata: {name: self}
spec: {parent: self}
---
kind: Group
metadata: {name: fine}
spec: {parent: a}
""")])
    cycles = [str(w) for w in report.warnings if "cycle" in w.message]
    assert len(cycles) == 2
    assert any("group:default/a, group:default/b" in c for c in cycles)
    assert any("group:default/self" in c for c in cycles)
    assert report.group_members == {g: 0 for g in ("group:default/a", "group:default/b",
                                                   "group:default/fine", "group:default/self")}


def test_format_report(conformance_org: Path) -> None:
    report = check_files([conformance_org])
    assert report.ok and report.warnings == []
    out = format_report(report)
    assert "users: 10  groups: 5  other entities: 2" in out
    lines = out.splitlines()
    assert any(line.split() == ["group:default/acme-corp", "10"] for line in lines)
    assert any(line.split() == ["group:default/engineering", "7"] for line in lines)
    assert lines[-1] == "OK (0 warning(s))"


def test_format_report_limits_long_sections(write: Write) -> None:
    users = "".join(f"---\nkind: User\nmetadata: {{name: u{i}}}\n" for i in range(30))
    report = check_files([write("org.yaml", users)])
    assert len(report.warnings) == 30
    out = format_report(report, limit=10)
    assert "… and 20 more" in out
    assert "u29" not in format_report(report, limit=10)
    assert "u29" in format_report(report, limit=None)
