"""`herald catalog check FILE…`: load the files, report problems and what each group resolves to."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from herald.catalog.entities import (
    CHILD_OF,
    HAS_MEMBER,
    MEMBER_OF,
    OWNED_BY,
    PARENT_OF,
    CatalogIssue,
    load_entities,
)
from herald.catalog.resolver import resolve_recipients
from herald.catalog.snapshot import CatalogSnapshot

_EXPECTED_KIND = {MEMBER_OF: ("group",), HAS_MEMBER: ("user",), CHILD_OF: ("group",),
                  PARENT_OF: ("group",), OWNED_BY: ("user", "group")}


@dataclass(frozen=True, slots=True)
class CheckReport:
    files: list[str]
    users: int
    groups: int
    others: int
    """Entities of other kinds (with `spec.owner`)."""
    errors: list[CatalogIssue]
    warnings: list[CatalogIssue]
    group_members: dict[str, int] = field(default_factory=dict)
    """Group ref -> number of users it resolves to (recursively, as notifications does)."""
    skipped: int = 0
    """Documents ignored: kinds other than User/Group without `spec.owner`."""

    @property
    def ok(self) -> bool:
        return not self.errors


def check_files(paths: Sequence[str | os.PathLike[str]]) -> CheckReport:
    load = load_entities(paths)
    snapshot = CatalogSnapshot(load)
    entities = snapshot.entities
    warnings = list(load.warnings)

    reported: set[tuple[str, str, str]] = set()
    for d in load.declared:
        key = (d.source, d.relation, d.target)
        if key in reported:
            continue
        reported.add(key)
        target_kind = d.target.split(":", 1)[0]
        if d.target not in entities:
            warnings.append(CatalogIssue(d.file, d.document, f"{d.field} refers to {d.target}, "
                                         "which is not in the catalog", d.source))
        elif target_kind not in _EXPECTED_KIND[d.relation]:
            wanted = " or ".join(_EXPECTED_KIND[d.relation])
            warnings.append(CatalogIssue(d.file, d.document, f"{d.field} refers to {d.target}, "
                                         f"expected a {wanted}", d.source))

    for info in snapshot.user_list:
        if not info.email:
            e = entities[info.ref]
            warnings.append(CatalogIssue(e.file, e.document, "user has no spec.profile.email "
                                         "(no email notifications)", info.ref))

    for cycle in _group_cycles(snapshot.group_children):
        e = entities[cycle[0]]
        warnings.append(CatalogIssue(e.file, e.document, "group hierarchy has a cycle (each is its own "
                                     f"descendant): {', '.join(cycle)}", cycle[0]))

    group_members = {g: len(resolve_recipients(snapshot, [g])) for g in sorted(snapshot.group_users)}
    users, groups, others = snapshot.counts()
    return CheckReport(files=list(load.files), users=users, groups=groups, others=others,
                       errors=list(load.errors), warnings=warnings, group_members=group_members,
                       skipped=load.skipped)


def format_report(report: CheckReport, *, limit: int | None = 50) -> str:
    """Human-readable report; at most `limit` lines per section (None: all)."""
    lines = [f"Catalog: {', '.join(report.files) or '(no files)'}",
             f"  users: {report.users}  groups: {report.groups}  other entities: {report.others}"]
    if report.skipped:
        lines.append(f"  ignored documents (no spec.owner): {report.skipped}")
    if report.group_members:
        lines.append("")
        lines.append("Groups (users reached, including child groups):")
        width = max(len(g) for g in report.group_members)
        lines.extend(_limited([f"  {g.ljust(width)}  {n}" for g, n in report.group_members.items()], limit))
    for title, issues in (("Warnings", report.warnings), ("Errors", report.errors)):
        if issues:
            lines.append("")
            lines.append(f"{title} ({len(issues)}):")
            lines.extend(_limited([f"  - {i}" for i in issues], limit))
    lines.append("")
    if report.ok:
        lines.append(f"OK ({len(report.warnings)} warning(s))")
    else:
        lines.append(f"FAILED: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return "\n".join(lines)


def _limited(lines: list[str], limit: int | None) -> list[str]:
    if limit is None or len(lines) <= limit:
        return lines
    return [*lines[:limit], f"  … and {len(lines) - limit} more"]


def _group_cycles(children: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected parentOf components that contain a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in children:
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(children.get(root, ()))))
        while work:
            node, it = work[-1]
            advanced = False
            for child in it:
                if child not in children:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(children.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1 or node in children.get(node, ()):
                    cycles.append(sorted(component))
    return cycles

