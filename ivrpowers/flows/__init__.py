"""IVR flows: YAML files describing what a call does, and the interpreter that runs them.

    flow = load_flow_file(resources.demo_flow())  # FlowError with every problem, by line
    result = await run_flow(flow, call, journal)  # drives a Call, writes to a Journal
    state = resume_state(timeline)                # an adopted call's run, from its journal
    result = await run_flow(flow, call, journal, services=Services(clock=...), state=state)

`ivrpowers.flows.testing` has a scripted fake caller and an in-memory journal.
"""

from . import nodes  # noqa: F401  (imported to register the other node types' handlers)
from .call import Call, CallerHungUp, Journal
from .interpreter import DEFAULT_MAX_STEPS, FlowFailed, FlowResult, Outcome, Run, base_context, handles, run_flow
from .loader import FlowError, Problem, check_flow, load_flow, load_flow_file
from .schema import (
    ADOPT_POLICIES,
    MEDIA_SCHEMES,
    NODE_TYPES,
    AdoptPolicy,
    AnswerNode,
    BaseNode,
    BranchNode,
    Flow,
    GatherNode,
    HangupNode,
    MenuNode,
    Node,
    PlayNode,
    SetNode,
)
from .services import Acd, Clock, HandOff, Http, HttpError, HttpResponse, Recorder, Recording, Services
from .state import RunState, TimelineEntry, resume_state
from .templates import TEMPLATE_NAMES, TemplateError, render

__all__ = [
    "ADOPT_POLICIES",
    "DEFAULT_MAX_STEPS",
    "MEDIA_SCHEMES",
    "NODE_TYPES",
    "TEMPLATE_NAMES",
    "Acd",
    "AdoptPolicy",
    "AnswerNode",
    "BaseNode",
    "BranchNode",
    "Call",
    "CallerHungUp",
    "Clock",
    "Flow",
    "FlowError",
    "FlowFailed",
    "FlowResult",
    "GatherNode",
    "HandOff",
    "HangupNode",
    "Http",
    "HttpError",
    "HttpResponse",
    "Journal",
    "MenuNode",
    "Node",
    "Outcome",
    "PlayNode",
    "Problem",
    "Recorder",
    "Recording",
    "Run",
    "RunState",
    "Services",
    "SetNode",
    "TemplateError",
    "TimelineEntry",
    "base_context",
    "check_flow",
    "handles",
    "load_flow",
    "load_flow_file",
    "render",
    "resume_state",
    "run_flow",
]
