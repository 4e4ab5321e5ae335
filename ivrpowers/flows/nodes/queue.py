"""`queue`: wait in an ACD queue for an agent, talk, go on.

The node owns what the caller hears and presses (hold media, announcements, the leave and
callback digits, its own `max_wait`); the ACD (`services.Acd`) owns the queue: position, offers,
and the bridge with the agent who answers. So the simulated call and a real one wait the same way.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ..call import CallerHungUp
from ..expression_syntax import is_number
from ..interpreter import FlowFailed, Run, handles
from ..schema import QueueAnnounce, QueueNode
from ..services import QueueRefused, QueueRequest, QueueTicket, QueueUpdate

# The longest a wait for a digit lasts before the node looks at its timers again: real calls wait
# on, a simulated one moves its clock on by this much per silence.
_SLICE = 60.0


@handles(QueueNode)
async def _queue(run: Run, node_id: str, node: QueueNode) -> str | None:
    # The queue an agent transferred the call to, when it is adopted waiting there.
    queue = run.state.partial.get("queue") or node.queue
    request = QueueRequest(str(queue), priority=_level(run, node_id, node.priority, 0, 100, "priority"),
                           skills=_skills(run, node_id, node), data=dict(run.state.vars))
    resumed = run.state.partial.get("joined_at")
    try:
        ticket = await run.acd.join(request)
    except QueueRefused as exc:
        await run.record("queue_refused", node_id, {"queue": request.queue, "reason": exc.reason})
        if exc.reason == "no_agents":
            return node.on_no_agents
        raise FlowFailed(f"node {node_id!r}: {exc}") from None
    joined = datetime.fromisoformat(resumed) if isinstance(resumed, str) else run.now()
    run.state.partial = {**run.state.partial, "joined_at": joined.isoformat()}
    await run.record("queue_joined", node_id, {"queue": request.queue, "priority": request.priority,
                                              "skills": dict(request.skills), "resumed": resumed is not None})
    waiting = _Waiting(run, node_id, node, ticket, joined, request)
    try:
        return await waiting.wait(first=resumed is None)
    except CallerHungUp:
        if not waiting.connected:  # after talking to an agent, hanging up is not abandoning
            await waiting.ticket.leave("caller_hangup")
            await run.record("queue_abandoned", node_id, {"queue": waiting.queue, "wait": waiting.waited()})
        raise


def _level(run: Run, node_id: str, expression: Any, low: int, high: int, what: str) -> int:
    value = run.evaluate(node_id, expression)
    if not is_number(value) or int(value) != value or not low <= value <= high:
        raise FlowFailed(f"node {node_id!r}: {what} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def _skills(run: Run, node_id: str, node: QueueNode) -> dict[str, int]:
    # A level of null or 0 (the lookup found nothing) asks for no level of that skill.
    levels = {name: run.evaluate(node_id, expression) for name, expression in node.skills.items()}
    return {name: _level(run, node_id, node.skills[name], 1, 10, f"skill {name!r}")
            for name, value in levels.items() if value not in (None, 0)}


class _Waiting:
    def __init__(self, run: Run, node_id: str, node: QueueNode, ticket: QueueTicket, joined: datetime,
                 request: QueueRequest) -> None:
        self.run, self.node_id, self.node, self.ticket, self.joined = run, node_id, node, ticket, joined
        self.request, self.queue = request, request.queue
        self.answered_after: float | None = None  # the wait, once an agent answered (talk is not waiting)
        self.announce = node.announce or QueueAnnounce.model_validate(ticket.announce)
        self.next_announce = self.waited() + self.announce.every if self.announce.every else None
        self.digits = {d for d in (node.leave_digit, node.callback_digit) if d is not None}
        self.connected = False  # with an agent: no digits, no announcements, only the ACD
        self.update: asyncio.Task[QueueUpdate]  # the ACD's next news, asked for by `wait`

    def waited(self) -> float:
        if self.answered_after is not None:
            return self.answered_after
        return round((self.run.now() - self.joined).total_seconds(), 3)

    async def record(self, type: str, **detail: Any) -> None:
        await self.run.record(type, self.node_id, {"queue": self.queue, "wait": self.waited(), **detail})

    async def wait(self, *, first: bool) -> str | None:
        self.update = asyncio.ensure_future(self.ticket.update())
        try:
            if first and self.node.prompt:
                await self.play_watching(self.node.prompt, barge_in=False)
            await self.run.call.hold(self.ticket.hold)
            while True:
                outcome = await self.step(self.update)
                if isinstance(outcome, QueueUpdate):  # consumed: wait for the next one
                    self.update = asyncio.ensure_future(self.ticket.update())
                    continue
                if not isinstance(outcome, _GoOn):
                    return outcome
        finally:
            self.update.cancel()

    async def play_watching(self, media: list[str], *, barge_in: bool) -> str | None:
        """Play `media` (the welcome prompt, an announcement); an agent's phone that starts ringing
        meanwhile is recorded as it rings, not when the prompt ends. The ACD's other news waits
        for the prompt's end, as before (an answer stops the prompt: `Call.join_agent`)."""
        play = asyncio.ensure_future(self.run.play(self.node_id, media, barge_in=barge_in))
        try:
            while not play.done():
                waits: set[asyncio.Future[Any]] = {play} if self.update.done() else {play, self.update}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                update = self.update
                if update.done() and not update.cancelled() and update.exception() is None \
                        and update.result().kind == "ringing":
                    await self.handled(update.result())
                    self.update = asyncio.ensure_future(self.ticket.update())
            return play.result()
        finally:
            if not play.done():
                play.cancel()
                await asyncio.gather(play, return_exceptions=True)

    async def step(self, update_task: asyncio.Task[QueueUpdate]) -> QueueUpdate | str | _GoOn | None:
        """One wait: for the ACD, a digit, or the next timer. Returns the update it handled, the
        node to go to (a str or None), or `_GO_ON`."""
        if self.connected:
            return await self.handled(await update_task)
        if not update_task.done():
            await asyncio.sleep(0)  # an update already there is handled before any wait for a digit
        if update_task.done():
            return await self.handled(update_task.result())
        timeout = self.until_next_timer()
        digit_task = asyncio.ensure_future(self.run.call.read_digit(timeout))
        try:
            await asyncio.wait({update_task, digit_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not digit_task.done():
                digit_task.cancel()
        # The ACD first: an agent who answered wins over a digit pressed at the same moment (the
        # digit is dropped; a hang-up shows again at the next wait).
        if update_task.done():
            if digit_task.done() and not digit_task.cancelled():
                digit_task.exception()
            return await self.handled(update_task.result())
        digit = digit_task.result()  # raises CallerHungUp if the caller left
        if digit is not None and digit in self.digits:
            return await self.pressed(digit)
        return await self.timers()

    def until_next_timer(self) -> float:
        waited = self.waited()
        timers = [t for t in (self.next_announce, self.node.max_wait) if t is not None]
        return max(0.0, min([_SLICE, *(t - waited for t in timers)]))

    async def timers(self) -> str | _GoOn | None:
        waited = self.waited()
        if self.node.max_wait is not None and waited >= self.node.max_wait:
            await self.ticket.leave("timeout")
            await self.run.call.hold(None)
            await self.record("queue_timeout", by="flow")
            return self.node.on_timeout
        if self.next_announce is not None and waited >= self.next_announce:
            self.next_announce = waited + self.announce.every
            status = await self.ticket.status()
            await self.run.call.hold(None)
            await self.record("queue_announced", position=status.position, estimated_wait=status.estimated_wait)
            digit = await self.play_watching(self.announcement(status), barge_in=True)
            await self.run.call.hold(self.ticket.hold)
            if digit is not None and digit in self.digits:
                return await self.pressed(digit)
        return _GO_ON

    async def transferred(self, queue: str, update: QueueUpdate) -> QueueUpdate | str | None:
        """The agent sent the caller to `queue`: they wait there, from now, as a new arrival."""
        request = QueueRequest(queue, priority=self.request.priority, skills=dict(self.request.skills),
                               data=dict(self.run.state.vars))
        try:
            ticket = await self.run.acd.join(request)
        except QueueRefused as exc:
            await self.record("queue_refused", to=queue, reason=exc.reason)
            return self.node.on_no_agents if exc.reason == "no_agents" else self.node.next
        self.ticket, self.request, self.queue, self.connected = ticket, request, queue, False
        self.joined, self.answered_after = self.run.now(), None
        self.run.state.partial = {"joined_at": self.joined.isoformat(), "queue": queue}
        await self.run.record("queue_joined", self.node_id, {"queue": queue, "priority": request.priority,
                                                            "skills": dict(request.skills), "resumed": False,
                                                            "transferred_by": update.agent})
        await self.run.call.hold(ticket.hold)
        return update  # handled: wait for the new queue's news

    def announcement(self, status: QueueUpdate) -> list[str]:
        media = []
        if self.announce.position and status.position is not None:
            media += (["sound:queue-youarenext"] if status.position == 1 else
                      ["sound:queue-thereare", f"number:{status.position}", "sound:queue-callswaiting"])
        if self.announce.wait_time and status.estimated_wait is not None and status.position != 1:
            minutes = max(1, round(status.estimated_wait / 60))
            media += ["sound:queue-holdtime", *(["sound:queue-less-than"] if status.estimated_wait < 60 else []),
                      f"number:{minutes}", "sound:queue-minute" if minutes == 1 else "sound:queue-minutes"]
        return [*media, "sound:queue-thankyou"]

    async def pressed(self, digit: str) -> str | _GoOn | None:
        if digit == self.node.leave_digit:
            await self.ticket.leave("left")
            await self.run.call.hold(None)
            await self.record("queue_left", digit=digit)
            return self.node.on_leave
        number = self.callback_number()
        refused = None
        if number:
            try:
                await self.ticket.park(number)
            except QueueRefused as exc:
                refused = exc.reason
        if refused or not number:
            await self.record("queue_callback_refused", number=number or None, reason=refused or "no_number")
            await self.run.call.hold(None)
            await self.run.play(self.node_id, ["sound:unidentified-no-callback"], barge_in=False)
            await self.run.call.hold(self.ticket.hold)
            return _GO_ON
        await self.run.call.hold(None)
        await self.record("queue_callback_requested", number=number)
        return self.node.on_callback

    def callback_number(self) -> str:
        if self.node.callback_number is None:
            value = self.run.context["caller"].get("number")
        else:
            value = self.run.evaluate(self.node_id, self.node.callback_number)
        text = str(value).strip() if value is not None else ""
        return text if text.lstrip("+").isdigit() else ""

    async def handled(self, update: QueueUpdate) -> QueueUpdate | str | None:
        if update.kind == "ringing":
            await self.record("queue_ringing", agent=update.agent)
        elif update.kind == "connected":
            self.connected = True
            self.answered_after = self.waited()
            await self.record("queue_answered", agent=update.agent)
        elif update.kind == "ended":
            await self.record("queue_agent_done", agent=update.agent, **dict(update.detail))
            if update.detail.get("caller_hung_up"):
                raise CallerHungUp()
            target = update.detail.get("transferred_to")
            if isinstance(target, str):
                return await self.transferred(target, update)
            return self.node.next
        elif update.kind in ("timeout", "no_agents"):
            await self.run.call.hold(None)
            await self.record(f"queue_{update.kind}", by="queue")
            return self.node.on_timeout if update.kind == "timeout" else self.node.on_no_agents
        return update


class _GoOn:
    """Nothing decided: wait again."""


_GO_ON = _GoOn()
