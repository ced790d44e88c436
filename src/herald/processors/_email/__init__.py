"""The built-in `Email` processor (spec §5.4)."""

from herald.processors._email.addresses import AddressPolicy, is_valid_address
from herald.processors._email.processor import EmailProcessor, EmailSettings, MailRenderer

__all__ = ["AddressPolicy", "EmailProcessor", "EmailSettings", "MailRenderer", "is_valid_address"]
