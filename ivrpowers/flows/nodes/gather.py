"""`gather`: several digits into a variable, with a terminator, two timeouts, a pattern and retries.

Built on the `Call`'s play and read_digit, so the simulated call and a real one share the digit
rules (`flows.digits`): a digit typed during the prompt barges in and is the input's first.
"""

from __future__ import annotations

import regex

from ..expressions import REGEX_TIMEOUT
from ..interpreter import SECRET_DIGIT, Run, handles
from ..schema import GatherNode


@handles(GatherNode)
async def _gather(run: Run, node_id: str, node: GatherNode) -> str | None:
    attempts = 1 + node.retries
    # Resumed after adoption: the attempt it was on and the digits it had.
    partial = run.state.partial
    first = partial.get("attempt", 1)
    first = first if isinstance(first, int) and 1 <= first <= attempts else 1
    kept = partial.get("digits", "")
    kept = kept if isinstance(kept, str) and len(kept) < node.max_digits else ""
    last_failure = "invalid" if partial.get("last_failure") == "invalid" else "timeout"
    typed_ahead: str | None = None  # a digit that interrupted the invalid prompt starts the next input
    for attempt in range(first, attempts + 1):
        if kept:
            start, digits, kept = None, kept, ""
        else:
            start = typed_ahead or await run.play(node_id, node.prompt, barge_in=True, secret=node.secret)
            digits = ""
        typed_ahead = None
        complete, digits = await _collect(run, node_id, node, attempt, digits, start)
        if not complete:
            last_failure = "timeout"
            run.state.partial = {"attempt": attempt + 1, "last_failure": last_failure}
            await run.record("gather_timeout", node_id, {"attempt": attempt})
            continue
        if _valid(node, digits):
            if node.secret:
                run.state.secret.add(node.var)
            run.state.vars[node.var] = digits
            run.state.partial = {}
            await run.record("gather_completed", node_id, {"var": node.var, "length": len(digits)})
            return node.next
        last_failure = "invalid"
        run.state.partial = {"attempt": attempt + 1, "last_failure": last_failure}
        await run.record("gather_invalid", node_id, {"attempt": attempt, "length": len(digits)})
        if attempt < attempts and node.invalid_prompt:
            typed_ahead = await run.play(node_id, node.invalid_prompt, barge_in=True, secret=node.secret)
    return node.on_invalid if last_failure == "invalid" else node.on_timeout


async def _collect(
    run: Run, node_id: str, node: GatherNode, attempt: int, digits: str, pending: str | None
) -> tuple[bool, str]:
    """Read until the input ends: (True, digits) when it did, (False, "") on no digit at all.

    `pending` is a digit already pressed (it barged into the prompt and is already journaled).
    """
    while True:
        if pending is None:
            pending = await run.call.read_digit(node.digit_timeout if digits else node.timeout)
            if pending is None:
                return bool(digits), digits  # silence: after some digits, the input is complete
            journal = True
        else:
            journal = False
        digit, pending = pending, None
        if node.terminator is not None and digit == node.terminator:
            if journal:
                await run.record("dtmf_received", node_id, {"digit": digit})
            return True, digits
        digits += digit
        # With the digit's own event: an adopting controller resumes with the digits so far (a
        # secret's are never stored: adopted, that attempt starts again).
        run.state.partial = {"attempt": attempt} if node.secret else {"attempt": attempt, "digits": digits}
        if journal:
            await run.record("dtmf_received", node_id, {"digit": SECRET_DIGIT if node.secret else digit})
        if len(digits) >= node.max_digits:
            return True, digits


def _valid(node: GatherNode, digits: str) -> bool:
    if len(digits) < node.min_digits:
        return False
    if node.pattern is None:
        return True
    try:
        return regex.fullmatch(node.pattern, digits, timeout=REGEX_TIMEOUT) is not None
    except TimeoutError:
        return False
