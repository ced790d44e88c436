"""Backstage's `DefaultNotificationRecipientResolver` (spec §3.7) over a catalog snapshot."""

from __future__ import annotations

from collections.abc import Sequence

from herald.catalog.snapshot import CatalogSnapshot
from herald.core.entity_ref import parse_entity_ref


def resolve_recipients(snapshot: CatalogSnapshot, entity_refs: Sequence[str],
                       excluded: Sequence[str] = ()) -> list[str]:
    """Expand entity refs to user refs, breadth-first, in discovery order, de-duplicated.

    * refs of kind `user` are taken as given (no lookup, no normalisation);
    * other refs not excluded (exact string) are looked up case-insensitively, unknown ones ignored;
    * a found entity whose normalised ref is excluded is skipped (an excluded group is not expanded);
    * a group adds its `hasMember` users and enqueues its `parentOf` children (never its parents);
    * any other kind enqueues its first `ownedBy` target;
    * the result drops every excluded ref (exact string).

    Raises ValueError when one of the refs to expand does not parse (e.g. `alice`, no kind)."""
    excluded_set = set(excluded)
    users: dict[str, None] = {}
    refs = list(dict.fromkeys(entity_refs))
    seen = set(refs)
    group_users, group_children, owner = snapshot.group_users, snapshot.group_children, snapshot.owner
    while refs:
        others: list[str] = []
        for ref in refs:
            if parse_entity_ref(ref).kind.lower() == "user":
                users[ref] = None
            else:
                others.append(ref)
        next_refs: list[str] = []
        for ref in others:
            if ref in excluded_set:
                continue
            entity = snapshot.get(ref)
            if entity is None:
                continue
            current = entity.ref
            if current in excluded_set:
                continue
            kind = entity.kind_lower
            if kind == "user":
                users[current] = None
            elif kind == "group":
                users.update(dict.fromkeys(group_users.get(current, ())))
                for child in group_children.get(current, ()):
                    if child not in seen:
                        seen.add(child)
                        next_refs.append(child)
            else:
                owner_ref = owner.get(current)
                if owner_ref is not None and owner_ref not in seen:
                    seen.add(owner_ref)
                    next_refs.append(owner_ref)
        refs = next_refs
    if not excluded_set:
        return list(users)
    return [u for u in users if u not in excluded_set]
