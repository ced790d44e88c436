"""Herald: a self-hosted notifications service, wire-compatible with Backstage notifications."""

__version__ = "0.1.0"
