"""An immutable, indexed view of one catalog load. Cheap to read from any task; replaced as a whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from herald.catalog.entities import HAS_MEMBER, MEMBER_OF, OWNED_BY, PARENT_OF, Entity, LoadResult
from herald.core.entity_ref import parse_entity_ref


@dataclass(frozen=True, slots=True)
class UserInfo:
    ref: str
    display_name: str | None
    email: str | None
    annotations: Mapping[str, str]


def lookup_key(ref: str) -> str | None:
    """The normalised form of `ref`, or None when it does not parse (kind is required)."""
    try:
        kind, namespace, name = parse_entity_ref(ref)
    except ValueError:
        return None
    return f"{kind.lower()}:{namespace.lower()}/{name.lower()}"


class CatalogSnapshot:
    """Entities by normalised ref plus the indexes the resolver and the processors need."""

    __slots__ = ("entities", "files", "globs", "group_children", "group_users", "owner", "stamps",
                 "user_emails", "user_list", "users")

    def __init__(self, load: LoadResult) -> None:
        entities = load.entities
        users: dict[str, UserInfo] = {}
        group_users: dict[str, tuple[str, ...]] = {}
        group_children: dict[str, tuple[str, ...]] = {}
        owner: dict[str, str] = {}
        for ref, e in entities.items():
            kind = e.kind_lower
            if kind == "user":
                users[ref] = UserInfo(ref, e.display_name, e.email, e.annotations)
            elif kind == "group":
                group_users[ref] = tuple(t for t in e.targets(HAS_MEMBER) if t.startswith("user:"))
                group_children[ref] = e.targets(PARENT_OF)
            else:
                owned_by = e.targets(OWNED_BY)
                if owned_by:
                    owner[ref] = owned_by[0]
        self.entities: Mapping[str, Entity] = MappingProxyType(dict(entities))
        self.users: Mapping[str, UserInfo] = MappingProxyType(users)
        self.user_list: tuple[UserInfo, ...] = tuple(users[r] for r in sorted(users))
        self.user_emails: tuple[str, ...] = tuple(
            dict.fromkeys(u.email for u in self.user_list if u.email))
        self.group_users: Mapping[str, tuple[str, ...]] = MappingProxyType(group_users)
        self.group_children: Mapping[str, tuple[str, ...]] = MappingProxyType(group_children)
        self.owner: Mapping[str, str] = MappingProxyType(owner)
        self.files: tuple[str, ...] = tuple(load.files)
        self.globs: tuple[str, ...] = tuple(load.globs)
        self.stamps: Mapping[str, tuple[int, int] | None] = MappingProxyType(dict(load.stamps))

    @classmethod
    def empty(cls) -> CatalogSnapshot:
        return cls(LoadResult())

    def get(self, ref: str) -> Entity | None:
        """Case-insensitive lookup; refs that do not parse find nothing."""
        entity = self.entities.get(ref)
        if entity is not None:
            return entity
        key = lookup_key(ref)
        return None if key is None else self.entities.get(key)

    def user(self, ref: str) -> UserInfo | None:
        info = self.users.get(ref)
        if info is not None:
            return info
        key = lookup_key(ref)
        return None if key is None else self.users.get(key)

    def ownership_refs(self, user_ref: str) -> list[str]:
        """The user ref and its direct groups (Backstage's default sign-in `ent` claim).

        ValueError when `user_ref` does not parse; an unknown user owns only itself."""
        kind, namespace, name = parse_entity_ref(user_ref)
        key = f"{kind.lower()}:{namespace.lower()}/{name.lower()}"
        entity = self.entities.get(key)
        if entity is None:
            return [key]
        return [key, *(t for t in entity.targets(MEMBER_OF) if t.startswith("group:"))]

    def counts(self) -> tuple[int, int, int]:
        """(users, groups, other entities)."""
        users, groups = len(self.users), len(self.group_users)
        return users, groups, len(self.entities) - users - groups
