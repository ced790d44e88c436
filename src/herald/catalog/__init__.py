"""Embedded org catalog: Backstage entity YAML files, relations, and recipient resolution (spec §3.7)."""

from herald.catalog.check import CheckReport, check_files, format_report
from herald.catalog.entities import CatalogIssue, Entity, LoadResult, load_entities, load_entities_from_text
from herald.catalog.file_catalog import CatalogLoadError, FileCatalog, demo_org_path
from herald.catalog.generate import generate_org
from herald.catalog.resolver import resolve_recipients
from herald.catalog.snapshot import CatalogSnapshot, UserInfo

__all__ = [
    "CatalogIssue",
    "CatalogLoadError",
    "CatalogSnapshot",
    "CheckReport",
    "Entity",
    "FileCatalog",
    "LoadResult",
    "UserInfo",
    "check_files",
    "demo_org_path",
    "format_report",
    "generate_org",
    "load_entities",
    "load_entities_from_text",
    "resolve_recipients",
]
