"""The handlers of every node type, one module per family (`basic`: answer, play, menu, hangup).

Each module registers its handlers with `@handles(...)` when imported; `ivrpowers.flows` imports
them all, so any import of the flows package has every node type runnable.
"""

from . import basic, gather, http, logic, queue, record, say, subflow, transfer

__all__ = ["basic", "gather", "http", "logic", "queue", "record", "say", "subflow", "transfer"]
