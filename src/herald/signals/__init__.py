"""Real-time signals: the Backstage `/api/signals` WebSocket, a resumable SSE stream, and the bus
that carries signals between processes. Build it with `Signals` (see `herald.signals.runtime`)."""

from herald.signals.bus import MemoryBus, PostgresBus, SignalBus, SignalService
from herald.signals.eventlog import EventLog, EventRow, MemoryEventLog, SqlEventLog
from herald.signals.hub import SignalEvent, SignalHub
from herald.signals.runtime import Signals, signals_routes, uvicorn_ws_options
from herald.signals.sse import SignalsEventStream
from herald.signals.websocket import SignalsWebSocket
from herald.signals.wsserver import SignalsWsProtocol, bind_ws_protocol, make_ws_protocol

__all__ = [
    "EventLog",
    "EventRow",
    "MemoryBus",
    "MemoryEventLog",
    "PostgresBus",
    "SignalBus",
    "SignalEvent",
    "SignalHub",
    "SignalService",
    "Signals",
    "SignalsEventStream",
    "SignalsWebSocket",
    "SignalsWsProtocol",
    "SqlEventLog",
    "bind_ws_protocol",
    "make_ws_protocol",
    "signals_routes",
    "uvicorn_ws_options",
]
