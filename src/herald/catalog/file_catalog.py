"""`FileCatalog`: an embedded org catalog read from Backstage entity YAML files.

Holds one immutable `CatalogSnapshot`; `reload()` builds a new one off the event loop and swaps it
in with a single assignment, only when the new load has no errors. `watch()` polls file stamps."""

from __future__ import annotations

import asyncio
import glob
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from herald.catalog.entities import CatalogIssue, Entity, LoadResult, load_entities, stamp
from herald.catalog.resolver import resolve_recipients
from herald.catalog.snapshot import CatalogSnapshot, UserInfo

if TYPE_CHECKING:
    from herald.core.ports import RecipientResolver

_log = logging.getLogger("herald.catalog")

Fingerprint = tuple[tuple[str, tuple[int, int] | None], ...]


class CatalogLoadError(Exception):
    """Raised by `FileCatalog.from_files(..., strict=True)` when the files have errors."""

    def __init__(self, errors: Sequence[CatalogIssue]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors[:20])
        more = f"\n  … and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(f"catalog has {len(self.errors)} error(s):\n{lines}{more}")


def demo_org_path() -> Path:
    """The bundled demo org (`demo_org.yaml`), used when no catalog file is configured."""
    return Path(__file__).with_name("demo_org.yaml")


def _fingerprint(files: Iterable[str], globs: Iterable[str],
                 known: dict[str, tuple[int, int] | None] | None = None) -> Fingerprint:
    paths = set(files)
    for pattern in globs:
        paths.update(os.path.abspath(m) for m in glob.glob(pattern, recursive=True))
    if known is None:
        return tuple((p, stamp(p)) for p in sorted(paths))
    # Stamps taken before each read; a file that appeared since (a new glob match) counts as unread
    # (None), so the next poll sees it as changed.
    return tuple((p, known.get(p)) for p in sorted(paths))


class FileCatalog:
    """Implements `herald.core.ports.RecipientResolver` plus the lookups processors need."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], load: LoadResult | None = None) -> None:
        self._paths = tuple(os.path.abspath(os.fspath(p)) for p in paths)
        self._lock = asyncio.Lock()
        load = load if load is not None else load_entities(self._paths)
        self._snapshot = CatalogSnapshot(load)
        self._errors: list[CatalogIssue] = list(load.errors)
        self._warnings: list[CatalogIssue] = list(load.warnings)
        self._attempted: Fingerprint = ()
        self._attempted_globs: tuple[str, ...] = ()
        self._remember(load)
        self._log_issues(load)

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike[str]], *, strict: bool = False) -> FileCatalog:
        """Load `paths` (blocking). With errors the valid entities are kept and the errors logged,
        unless `strict`, which raises `CatalogLoadError`."""
        load = load_entities(os.path.abspath(os.fspath(p)) for p in paths)
        if strict and load.errors:
            raise CatalogLoadError(load.errors)
        return cls(paths, load)

    @classmethod
    def demo(cls) -> FileCatalog:
        return cls.from_files([demo_org_path()], strict=True)

    # -- state --------------------------------------------------------------------------------

    @property
    def paths(self) -> tuple[str, ...]:
        return self._paths

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self._snapshot

    @property
    def errors(self) -> list[CatalogIssue]:
        """Errors of the latest load attempt (a failed reload keeps the older snapshot)."""
        return list(self._errors)

    @property
    def warnings(self) -> list[CatalogIssue]:
        return list(self._warnings)

    # -- RecipientResolver ----------------------------------------------------------------------

    async def resolve(self, entity_refs: Sequence[str], excluded: Sequence[str]) -> list[str]:
        return resolve_recipients(self._snapshot, entity_refs, excluded)

    # -- lookups --------------------------------------------------------------------------------

    def user(self, ref: str) -> UserInfo | None:
        return self._snapshot.user(ref)

    def users(self) -> list[UserInfo]:
        """Every user, sorted by ref."""
        return list(self._snapshot.user_list)

    def user_emails(self) -> list[str]:
        """`spec.profile.email` of every user that has one, de-duplicated, in user-ref order."""
        return list(self._snapshot.user_emails)

    def entity(self, ref: str) -> Entity | None:
        """Any entity by ref (case-insensitive), e.g. for a group's `slack.com/bot-notify`."""
        return self._snapshot.get(ref)

    def ownership_refs(self, user_ref: str) -> list[str]:
        """The user ref and the groups it is directly a member of. ValueError if it does not parse."""
        return self._snapshot.ownership_refs(user_ref)

    # -- reload / watch -------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Re-read the files; swap the snapshot only when the new load has no errors.

        Returns True when the new snapshot is in place."""
        async with self._lock:
            load = await asyncio.to_thread(load_entities, self._paths)
            self._remember(load)
            self._errors = list(load.errors)
            self._warnings = list(load.warnings)
            if load.errors:
                _log.error("catalog reload failed with %d error(s); keeping the previous catalog",
                           len(load.errors))
                for issue in load.errors:
                    _log.error("catalog: %s", issue)
                return False
            snapshot = await asyncio.to_thread(CatalogSnapshot, load)
            self._snapshot = snapshot
            users, groups, others = snapshot.counts()
            _log.info("catalog reloaded: %d users, %d groups, %d other entities", users, groups, others)
            for issue in load.warnings:
                _log.warning("catalog: %s", issue)
            return True

    async def changed(self) -> bool:
        """True when a file (or a Location glob's match list) differs from the latest load attempt."""
        files = [f for f, _ in self._attempted]
        now = await asyncio.to_thread(_fingerprint, [*self._paths, *files], self._attempted_globs)
        return now != self._attempted

    async def watch(self, interval_s: float = 2.0) -> None:
        """Poll file mtimes/sizes every `interval_s` and reload on change. Runs until cancelled:
        `herald.core.tasks.spawn(catalog.watch(5.0))`, then `task.cancel()` on shutdown."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                if await self.changed():
                    await self.reload()
            except Exception:
                _log.exception("catalog watch failed; will retry")

    # -- internals ------------------------------------------------------------------------------

    def _remember(self, load: LoadResult) -> None:
        """What the latest attempt read, so `changed()` notices edits since (even after a failure)."""
        self._attempted_globs = tuple(load.globs)
        self._attempted = _fingerprint([*self._paths, *load.files], load.globs, dict(load.stamps))

    def _log_issues(self, load: LoadResult) -> None:
        for issue in load.errors:
            _log.error("catalog: %s", issue)
        for issue in load.warnings:
            _log.warning("catalog: %s", issue)
        users, groups, others = self._snapshot.counts()
        _log.info("catalog loaded from %d file(s): %d users, %d groups, %d other entities",
                  len(load.files), users, groups, others)


if TYPE_CHECKING:
    def _is_resolver(catalog: FileCatalog) -> RecipientResolver:
        return catalog
