"""AMI, for what ARI lacks: which phones are registered (contacts).

The product's AMI account may do no more (manager.conf): no CLI commands, no originate, no events.

panoramisk does the protocol; `AmiClient` is the small interface the rest of ivrpowers uses.
"""

from .client import AmiClient, AmiError, Contact

__all__ = ["AmiClient", "AmiError", "Contact"]
