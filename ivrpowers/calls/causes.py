"""Hangup causes: the ITU-T Q.850 code a channel ends with, and its name for the CDR.

The app hears of a channel's end by ChannelHangupRequest and StasisEnd. ChannelDestroyed, which
has the final cause and its text, reaches only an app subscribed to the channel by a request of
its own, and that drags in every dialplan event after Stasis: one request and about eight events
a call. So the cause is the one in the caller's hangup request (a BYE's), or the one the app asked
for when it hangs up itself. A "soft" hangup request (ARI, CLI, AMI) carries Asterisk's internal
soft-hangup flag in its `cause` field, not a Q.850 code: it is not a cause.
"""

from __future__ import annotations

Q850: dict[int, str] = {
    1: "Unallocated (unassigned) number",
    2: "No route to specified transit network",
    3: "No route to destination",
    6: "Channel unacceptable",
    7: "Call awarded and being delivered in an established channel",
    16: "Normal call clearing",
    17: "User busy",
    18: "No user responding",
    19: "No answer from user (user alerted)",
    20: "Subscriber absent",
    21: "Call rejected",
    22: "Number changed",
    23: "Redirection to new destination",
    26: "Non-selected user clearing",
    27: "Destination out of order",
    28: "Invalid number format (address incomplete)",
    29: "Facility rejected",
    30: "Response to STATUS ENQUIRY",
    31: "Normal, unspecified",
    34: "No circuit/channel available",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    43: "Access information discarded",
    44: "Requested circuit/channel not available",
    47: "Resource unavailable, unspecified",
    50: "Requested facility not subscribed",
    52: "Outgoing calls barred",
    54: "Incoming calls barred",
    57: "Bearer capability not authorized",
    58: "Bearer capability not presently available",
    63: "Service or option not available, unspecified",
    65: "Bearer capability not implemented",
    66: "Channel type not implemented",
    69: "Requested facility not implemented",
    79: "Service or option not implemented, unspecified",
    81: "Invalid call reference value",
    88: "Incompatible destination",
    95: "Invalid message, unspecified",
    96: "Mandatory information element is missing",
    97: "Message type non-existent or not implemented",
    99: "Information element non-existent or not implemented",
    100: "Invalid information element contents",
    101: "Message not compatible with call state",
    102: "Recovery on timer expiry",
    111: "Protocol error, unspecified",
    127: "Interworking, unspecified",
}


NORMAL_CLEARING = 16

# ARI's hangup `reason` -> the Q.850 cause Asterisk gives the channel.
REASONS: dict[str, int] = {
    "normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18, "rejected": 21,
    "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28, "codec_mismatch": 58,
    "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}


def cause_text(cause: int | None) -> str | None:
    """The cause's Q.850 name; None for no cause (0 is Asterisk's "not set")."""
    if not cause:
        return None
    return Q850.get(cause, f"cause {cause}")


def hangup_request_cause(cause: int | None, soft: bool | None) -> int | None:
    """The Q.850 cause a ChannelHangupRequest tells of, or None when it tells none.

    A far end's hangup (a BYE) without a cause of its own leaves the channel's cause unset, and the
    `Hangup()` that follows `Stasis()` in every context gives it normal clearing.
    """
    if soft:
        return None
    return cause or NORMAL_CLEARING
