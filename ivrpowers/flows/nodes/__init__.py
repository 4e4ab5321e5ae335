"""Node handlers beyond the first four (`answer`, `play`, `menu`, `hangup`, in `interpreter.py`).

Each module registers its handlers with `@handles(...)` when imported; `ivrpowers.flows` imports
them all, so any import of the flows package has every node type runnable.
"""

from . import gather, http, logic, record, say, subflow, transfer

__all__ = ["gather", "http", "logic", "record", "say", "subflow", "transfer"]
