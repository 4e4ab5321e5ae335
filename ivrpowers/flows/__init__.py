"""IVR flows: YAML files describing what a call does, and the interpreter that runs them.

    flow = load_flow_file("flows/demo.yaml")      # FlowError with every problem, by line
    result = await run_flow(flow, call, journal)  # drives a Call, writes to a Journal

`ivrpowers.flows.testing` has a scripted fake caller and an in-memory journal.
"""

from .call import Call, CallerHungUp, Journal
from .interpreter import DEFAULT_MAX_STEPS, FlowResult, Outcome, base_context, run_flow
from .loader import FlowError, Problem, check_flow, load_flow, load_flow_file
from .schema import (
    MEDIA_SCHEMES,
    NODE_TYPES,
    AnswerNode,
    BaseNode,
    Flow,
    HangupNode,
    MenuNode,
    Node,
    PlayNode,
)
from .templates import TEMPLATE_NAMES, TemplateError, render

__all__ = [
    "DEFAULT_MAX_STEPS",
    "MEDIA_SCHEMES",
    "NODE_TYPES",
    "TEMPLATE_NAMES",
    "AnswerNode",
    "BaseNode",
    "Call",
    "CallerHungUp",
    "Flow",
    "FlowError",
    "FlowResult",
    "HangupNode",
    "Journal",
    "MenuNode",
    "Node",
    "Outcome",
    "PlayNode",
    "Problem",
    "TemplateError",
    "base_context",
    "check_flow",
    "load_flow",
    "load_flow_file",
    "render",
    "run_flow",
]
