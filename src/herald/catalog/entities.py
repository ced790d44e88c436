"""Load Backstage entity YAML files and derive the relations Backstage's built-in processors derive.

Only what notifications need is kept: Users, Groups, and every other kind that has `spec.owner`
(Component, System, API, Resource, Domain, Template …). `kind: Location` documents are followed
through their relative-file `spec.target` / `spec.targets` (globs allowed); URL targets are skipped
with a warning.

Refs are normalised the catalog way (`kind:namespace/name`, all lower case, namespace `default`),
and every lookup and relation target uses that form.

Relations (both directions, the union of what both sides declare, as Backstage stores them):

    User  spec.memberOf  -> memberOf / hasMember     (default kind group)
    Group spec.members   -> hasMember / memberOf     (default kind user)
    Group spec.parent    -> childOf / parentOf       (default kind group)
    Group spec.children  -> parentOf / childOf       (default kind group)
    other spec.owner     -> ownedBy / ownerOf        (default kind group)

Reference namespaces default to the declaring entity's namespace.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from herald.core.entity_ref import parse_entity_ref

try:  # the libyaml binding is several times faster on large org files
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _YamlLoader = yaml.SafeLoader

MEMBER_OF = "memberOf"
HAS_MEMBER = "hasMember"
CHILD_OF = "childOf"
PARENT_OF = "parentOf"
OWNED_BY = "ownedBy"
OWNER_OF = "ownerOf"

_INVERSE = {
    MEMBER_OF: HAS_MEMBER,
    HAS_MEMBER: MEMBER_OF,
    CHILD_OF: PARENT_OF,
    PARENT_OF: CHILD_OF,
    OWNED_BY: OWNER_OF,
    OWNER_OF: OWNED_BY,
}

# Backstage's validators (catalog-model `KubernetesValidatorFunctions`), slightly lenient on case.
_KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_NAME_RE = re.compile(r"^([A-Za-z0-9][-_.A-Za-z0-9]*)?[A-Za-z0-9]$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*$")
_GLOB_CHARS = re.compile(r"[*?\[]")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def normalize(kind: str, namespace: str, name: str) -> str:
    return f"{kind.lower()}:{namespace.lower()}/{name.lower()}"


def normalize_ref(ref: str, *, default_kind: str | None = None, default_namespace: str = "default") -> str:
    """`kind:namespace/name` in lower case; ValueError when `ref` does not parse."""
    kind, namespace, name = parse_entity_ref(ref, default_kind=default_kind,
                                             default_namespace=default_namespace)
    return normalize(kind, namespace, name)


@dataclass(frozen=True, slots=True)
class CatalogIssue:
    """An error or warning found while loading. `document` is 1-based within `file` (None: the file)."""

    file: str
    document: int | None
    message: str
    entity: str | None = None

    def __str__(self) -> str:
        where = self.file if self.document is None else f"{self.file} document {self.document}"
        if self.entity:
            where += f" ({self.entity})"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Entity:
    """One catalog entity as notifications sees it. `relations` maps a relation type to its
    targets (normalised refs, sorted). `kind`/`namespace`/`name` keep the file's spelling."""

    ref: str
    kind: str
    namespace: str
    name: str
    annotations: Mapping[str, str]
    display_name: str | None
    email: str | None
    type: str | None
    relations: Mapping[str, tuple[str, ...]]
    file: str
    document: int

    def targets(self, relation: str) -> tuple[str, ...]:
        return self.relations.get(relation, ())

    @property
    def kind_lower(self) -> str:
        return self.ref.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Declared:
    """A relation as written in a file (before checking that its target exists)."""

    source: str
    relation: str
    target: str
    field: str
    file: str
    document: int


@dataclass(slots=True)
class LoadResult:
    entities: dict[str, Entity] = field(default_factory=dict)
    """By normalised ref, in file order."""
    errors: list[CatalogIssue] = field(default_factory=list)
    warnings: list[CatalogIssue] = field(default_factory=list)
    declared: list[Declared] = field(default_factory=list)
    """Every relation a file declared (one direction only), for dangling-reference checks."""
    files: list[str] = field(default_factory=list)
    """Every file read (the given ones and Location targets), in read order."""
    globs: list[str] = field(default_factory=list)
    """Location glob patterns, so a watcher can notice new files."""
    stamps: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    """(mtime_ns, size) of each file, taken just before it was read; None when missing."""
    skipped: int = 0
    """Documents of other kinds without `spec.owner`, ignored."""

    @property
    def ok(self) -> bool:
        return not self.errors


class _Invalid(Exception):
    """One thing wrong with one document."""


@dataclass(slots=True)
class _Raw:
    ref: str
    kind: str
    namespace: str
    name: str
    annotations: Mapping[str, str]
    display_name: str | None
    email: str | None
    type: str | None
    file: str
    document: int


def stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def load_entities(paths: Iterable[str | os.PathLike[str]]) -> LoadResult:
    """Read every file (following Location targets) and build the entities with their relations.

    Never raises for bad content: problems are collected in `errors` / `warnings`."""
    loader = _Reader(LoadResult())
    for p in paths:
        loader.read_file(os.path.abspath(os.fspath(p)), origin=None)
    return loader.finish()


def load_entities_from_text(text: str, *, file: str = "<text>") -> LoadResult:
    """Same as `load_entities` for YAML held in memory (Location targets resolve against cwd)."""
    loader = _Reader(LoadResult())
    loader.parse_text(text, file, base_dir=os.getcwd())
    return loader.finish()


class _Reader:
    def __init__(self, result: LoadResult) -> None:
        self.result = result
        self.raw: dict[str, _Raw] = {}
        self.pairs: dict[str, dict[str, dict[str, None]]] = {}
        self.visited: set[str] = set()

    # -- files --------------------------------------------------------------------------------

    def read_file(self, path: str, *, origin: CatalogIssue | None) -> None:
        if path in self.visited:
            return
        self.visited.add(path)
        self.result.files.append(path)
        self.result.stamps[path] = stamp(path)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if origin is not None:
                self.result.errors.append(CatalogIssue(origin.file, origin.document,
                                                       f"Location target {path}: {reason}",
                                                       origin.entity))
            else:
                self.result.errors.append(CatalogIssue(path, None, f"cannot read file: {reason}"))
            return
        self.parse_text(text, path, base_dir=os.path.dirname(path))

    def parse_text(self, text: str, file: str, *, base_dir: str) -> None:
        index = 0
        try:
            for doc in yaml.load_all(text, Loader=_YamlLoader):
                index += 1
                if doc is None:
                    continue
                try:
                    self.document(doc, file, index, base_dir)
                except _Invalid as exc:
                    self.result.errors.append(CatalogIssue(file, index, str(exc), _guess_ref(doc)))
        except yaml.YAMLError as exc:
            self.result.errors.append(CatalogIssue(file, index + 1, f"invalid YAML: {_one_line(exc)}"))

    # -- documents ----------------------------------------------------------------------------

    def document(self, doc: Any, file: str, index: int, base_dir: str) -> None:
        if not isinstance(doc, dict):
            raise _Invalid(f"document must be a mapping, got {_type_name(doc)}")
        kind = doc.get("kind")
        if kind is None:
            raise _Invalid("missing 'kind'")
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise _Invalid(f"invalid 'kind': {kind!r}")
        metadata = doc.get("metadata")
        if metadata is None:
            raise _Invalid("missing 'metadata'")
        if not isinstance(metadata, dict):
            raise _Invalid(f"'metadata' must be a mapping, got {_type_name(metadata)}")
        spec = doc.get("spec", {})
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise _Invalid(f"'spec' must be a mapping, got {_type_name(spec)}")
        kind_l = kind.lower()
        if kind_l == "location":
            self.location(spec, file, index, base_dir, metadata)
            return
        if kind_l not in ("user", "group") and "owner" not in spec:
            self.result.skipped += 1
            return

        name = metadata.get("name")
        if name is None:
            raise _Invalid("missing 'metadata.name'")
        if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 63:
            raise _Invalid(f"invalid 'metadata.name': {name!r}")
        namespace = metadata.get("namespace", "default")
        if namespace is None:
            namespace = "default"
        if not isinstance(namespace, str) or not _NAMESPACE_RE.match(namespace) or len(namespace) > 63:
            raise _Invalid(f"invalid 'metadata.namespace': {namespace!r}")
        annotations = metadata.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise _Invalid(f"'metadata.annotations' must be a mapping, got {_type_name(annotations)}")
        for key, value in annotations.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise _Invalid(f"annotation {key!r} must map a string to a string, got {_type_name(value)}")

        profile = spec.get("profile") or {}
        if not isinstance(profile, dict):
            raise _Invalid(f"'spec.profile' must be a mapping, got {_type_name(profile)}")
        email = _opt_str(profile, "email", "spec.profile.email")
        display_name = _opt_str(profile, "displayName", "spec.profile.displayName")
        spec_type = _opt_str(spec, "type", "spec.type") if kind_l == "group" else None
        ref = normalize(kind, namespace, name)

        # Collect this entity's declared relations first, so a bad reference rejects the whole entity.
        rels: list[tuple[str, str, str]] = []
        if kind_l == "user":
            for t in _ref_list(spec, "memberOf", "spec.memberOf", "group", namespace):
                rels.append((MEMBER_OF, t, "spec.memberOf"))
        elif kind_l == "group":
            parent = spec.get("parent")
            if parent is not None:
                if not isinstance(parent, str):
                    raise _Invalid(f"'spec.parent' must be a string, got {_type_name(parent)}")
                rels.append((CHILD_OF, _target(parent, "spec.parent", "group", namespace), "spec.parent"))
            for t in _ref_list(spec, "children", "spec.children", "group", namespace):
                rels.append((PARENT_OF, t, "spec.children"))
            for t in _ref_list(spec, "members", "spec.members", "user", namespace):
                rels.append((HAS_MEMBER, t, "spec.members"))
        else:
            owner = spec.get("owner")
            if not isinstance(owner, str):
                raise _Invalid(f"'spec.owner' must be a string, got {_type_name(owner)}")
            rels.append((OWNED_BY, _target(owner, "spec.owner", "group", namespace), "spec.owner"))

        if ref in self.raw:
            first = self.raw[ref]
            raise _Invalid(f"duplicate entity {ref}, already defined in {first.file} "
                           f"document {first.document}")
        self.raw[ref] = _Raw(ref, kind, namespace, name, MappingProxyType(dict(annotations)),
                             display_name, email, spec_type, file, index)
        for relation, target, fld in rels:
            self.result.declared.append(Declared(ref, relation, target, fld, file, index))
            self.add(ref, relation, target)
            self.add(target, _INVERSE[relation], ref)

    def location(self, spec: dict[str, Any], file: str, index: int, base_dir: str,
                 metadata: dict[str, Any]) -> None:
        targets: list[Any] = []
        if "target" in spec:
            targets.append(spec["target"])
        more = spec.get("targets")
        if more is not None:
            if not isinstance(more, list):
                raise _Invalid(f"'spec.targets' must be a list, got {_type_name(more)}")
            targets.extend(more)
        name = metadata.get("name")
        label = f"location:default/{name}" if isinstance(name, str) else None
        origin = CatalogIssue(file, index, "", label)
        for target in targets:
            if not isinstance(target, str) or not target:
                raise _Invalid(f"Location target must be a non-empty string, got {target!r}")
            if "://" in target:
                self.result.warnings.append(CatalogIssue(file, index, f"Location target {target} is a URL; "
                                                         "only file targets are followed", label))
                continue
            path = os.path.normpath(os.path.join(base_dir, target))
            if _GLOB_CHARS.search(target):
                self.result.globs.append(path)
                matches = sorted(glob.glob(path, recursive=True))
                if not matches:
                    self.result.warnings.append(CatalogIssue(file, index,
                                                             f"Location target {target} matches no file",
                                                             label))
                for m in matches:
                    self.read_file(os.path.abspath(m), origin=origin)
            else:
                self.read_file(os.path.abspath(path), origin=origin)

    def add(self, source: str, relation: str, target: str) -> None:
        by_type = self.pairs.get(source)
        if by_type is None:
            by_type = self.pairs[source] = {}
        targets = by_type.get(relation)
        if targets is None:
            targets = by_type[relation] = {}
        targets[target] = None

    def finish(self) -> LoadResult:
        entities = self.result.entities
        for ref, raw in self.raw.items():
            by_type = self.pairs.get(ref, {})
            relations = MappingProxyType({rel: tuple(sorted(ts)) for rel, ts in by_type.items()})
            entities[ref] = Entity(
                ref=ref, kind=raw.kind, namespace=raw.namespace, name=raw.name,
                annotations=raw.annotations, display_name=raw.display_name, email=raw.email,
                type=raw.type, relations=relations, file=raw.file, document=raw.document,
            )
        return self.result


def _ref_list(spec: Mapping[str, Any], key: str, label: str, default_kind: str, namespace: str) -> list[str]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(f"'{label}' must be a list of entity references, got {_type_name(value)}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise _Invalid(f"'{label}' entries must be strings, got {item!r}")
        out.append(_target(item, label, default_kind, namespace))
    return out


def _target(value: str, label: str, default_kind: str, namespace: str) -> str:
    try:
        return normalize_ref(value, default_kind=default_kind, default_namespace=namespace)
    except ValueError as exc:
        raise _Invalid(f"'{label}': {exc}") from None


def _opt_str(obj: Mapping[str, Any], key: str, label: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"'{label}' must be a string, got {_type_name(value)}")
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _guess_ref(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    kind, metadata = doc.get("kind"), doc.get("metadata")
    if not isinstance(kind, str) or not isinstance(metadata, dict):
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace") or "default"
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return f"{kind.lower()}:{namespace.lower()}/{name.lower()}"


def _one_line(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())
