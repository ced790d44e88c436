"""Backstage entity references: `kind:namespace/name`, with `default` as the namespace default."""

from __future__ import annotations

from typing import NamedTuple


class EntityRef(NamedTuple):
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"


def parse_entity_ref(ref: str, *, default_kind: str | None = None, default_namespace: str = "default"
                     ) -> EntityRef:
    """Parse like `@backstage/catalog-model`'s `parseEntityRef`; raise ValueError when malformed."""
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"Entity reference must be a non-empty string, got {ref!r}")
    kind: str | None
    colon = ref.find(":")
    slash = ref.find("/")
    if colon != -1 and (slash == -1 or colon < slash):
        kind, rest = ref[:colon], ref[colon + 1:]
    else:
        kind, rest = default_kind, ref
    if "/" in rest:
        namespace, name = rest.split("/", 1)
    else:
        namespace, name = default_namespace, rest
    if not kind:
        raise ValueError(f"Entity reference '{ref}' had missing or empty kind (e.g. did not start with "
                         "'component:' or similar)")
    if not namespace:
        raise ValueError(f"Entity reference '{ref}' had missing or empty namespace")
    if not name or "/" in name or ":" in name:
        raise ValueError(f"Entity reference '{ref}' had missing or empty name")
    return EntityRef(kind, namespace, name)


def normalize_ref(ref: str, *, default_kind: str | None = None) -> str:
    """The catalog's canonical, lower-cased form `kind:namespace/name`."""
    k, ns, n = parse_entity_ref(ref, default_kind=default_kind)
    return f"{k.lower()}:{ns.lower()}/{n.lower()}"


def is_user_ref(ref: str) -> bool:
    """True when `ref` parses and its kind is `user` (case-insensitive)."""
    try:
        return parse_entity_ref(ref).kind.lower() == "user"
    except ValueError:
        return False
