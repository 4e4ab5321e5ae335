"""AMI, for what ARI lacks: which phones are registered (contacts), and when a phone's reachability
changes (the PeerStatus and ContactStatus events that `ivrpowers.endpoints.presence` follows).

The product's AMI account may do no more (manager.conf): no CLI commands, no originate, no other events.

panoramisk does the protocol; `AmiClient` is the small interface the rest of ivrpowers uses.
"""

from .client import AmiClient, AmiError, Contact

__all__ = ["AmiClient", "AmiError", "Contact"]
