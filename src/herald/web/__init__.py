"""The inbox web page served at `/`: notifications and settings in the browser, live."""

from herald.web.routes import web_routes

__all__ = ["web_routes"]
