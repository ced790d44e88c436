"""Processors: channels beyond the Web inbox (email, webhooks, Slack, your own), with durable delivery.

The public API for writing a processor. A processor is a `Processor` subclass with a `name`
(the channel id in user settings), a `kind` (its key under `notifications.processors`), a
`Settings` model (secrets as `SecretStr`/`SecretUrl`, redacted whenever shown or logged) and an
async `deliver(delivery) -> DeliveryResult`. Register it in the `herald.processors` entry-point
group; configuration turns it on. `herald.processors.testing` has the tools to test one.
"""

from herald.processors._api import (
    Delivery,
    DeliveryPlan,
    DeliveryResult,
    Directory,
    DirectoryEntity,
    DirectoryUser,
    Duration,
    Filters,
    Limits,
    Outcome,
    Processor,
    ProcessorConfigError,
    ProcessorContext,
    ProcessorSettings,
    SettingsModel,
)
from herald.processors._registry import ENTRY_POINT_GROUP, builtin_processors, registered_processors
from herald.processors._secrets import SecretUrl
from herald.processors._webhook import verify_signature

__all__ = [
    "ENTRY_POINT_GROUP",
    "Delivery",
    "DeliveryPlan",
    "DeliveryResult",
    "Directory",
    "DirectoryEntity",
    "DirectoryUser",
    "Duration",
    "Filters",
    "Limits",
    "Outcome",
    "Processor",
    "ProcessorConfigError",
    "ProcessorContext",
    "ProcessorSettings",
    "SecretUrl",
    "SettingsModel",
    "builtin_processors",
    "registered_processors",
    "verify_signature",
]
