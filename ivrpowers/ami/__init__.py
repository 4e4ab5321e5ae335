"""AMI, for what ARI lacks: contact and registration state, security events, CLI commands.

panoramisk does the protocol; `AmiClient` is the small interface the rest of ivrpowers uses.
"""

from .client import AmiClient, AmiError, Contact

__all__ = ["AmiClient", "AmiError", "Contact"]
