"""What the chat API takes (strict pydantic bodies) and returns (JSON schemas for the OpenAPI
document), and the limits that keep one chat, or one queue's chats, from growing without bound."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

MAX_TEXT = 4000  # characters in a message
MAX_NAME = 80  # characters in a customer's name
MAX_MESSAGES = 1000  # lines in one transcript, system lines included
MAX_OPEN_PER_QUEUE = 500  # chats waiting or answered in one queue
MAX_SOCKETS = 4  # websockets open on one chat (a customer's tabs, an agent's)
MAX_SKILLS = 20

_NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,62}$"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("text", "text cannot be blank")
    return value


# PostgreSQL refuses NUL in text: refused here, as the client's mistake, not in the database (and a
# lone surrogate, which JSON allows as "\ud800", pydantic refuses as no Unicode string).
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"^[^\x00]*$"), AfterValidator(_not_blank)]
Name = Annotated[str, Field(pattern=_NAME_PATTERN)]
# A name is shown on one line: no control characters.
CustomerName = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=r"^[^\x00-\x1f\x7f]*$"),
                         AfterValidator(_not_blank)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NewChat(_Body):
    """`POST /api/chats`: a website's backend opens a chat for its visitor."""

    customer_name: CustomerName
    queue: Name
    skills: Annotated[dict[Name, Annotated[int, Field(ge=1, le=10)]],
                      Field(max_length=MAX_SKILLS, json_schema_extra={"additionalProperties": False})] = {}
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    message: Text


class NewMessage(_Body):
    """`POST /api/chats/{id}/messages`: `agent` is for API-token callers (the agent who holds the
    chat); a customer (chat token) leaves it out."""

    text: Text
    agent: Name | None = None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


_ISO: dict[str, Any] = {"type": "string", "format": "date-time"}
_ISO_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
STATUS: dict[str, Any] = {"type": "string", "enum": ["waiting", "active", "closed"]}

MESSAGE: dict[str, Any] = {"type": "object", "required": ["id", "at", "sender", "text"], "properties": {
    "id": {"type": "integer"}, "at": _ISO, "sender": {"type": "string", "enum": ["customer", "agent", "system"]},
    "agent": {"type": ["string", "null"]}, "text": {"type": "string"}}}

CREATED: dict[str, Any] = {"type": "object", "required": ["id", "customer_token", "status"], "properties": {
    "id": {"type": "string"}, "status": STATUS,
    "customer_token": {"type": "string", "description": "for the customer only: shown once, stored as a digest"}}}

CHAT: dict[str, Any] = {"type": "object", "required": ["id", "queue", "customer_name", "status"], "properties": {
    "id": {"type": "string"}, "queue": {"type": "string"}, "customer_name": {"type": "string"},
    "skills": {"type": "object", "additionalProperties": {"type": "integer"}}, "priority": {"type": "integer"},
    "status": STATUS, "outcome": {"type": ["string", "null"]}, "agent": {"type": ["string", "null"]},
    "created_at": _ISO, "answered_at": _ISO_OR_NULL, "closed_at": _ISO_OR_NULL,
    "offers": {"type": "object", "additionalProperties": _ISO, "description": "agent -> when its offer rings out"}}}

CHAT_WITH_TRANSCRIPT: dict[str, Any] = {
    "type": "object", "required": ["id", "customer_name", "status", "messages"],
    "properties": {**CHAT["properties"], "messages": {"type": "array", "items": MESSAGE}},
    "description": "with an API token, the whole record; with the customer's token, id, status, customer_name "
                   "and messages"}

AGENT_CHATS: dict[str, Any] = {"type": "object", "required": ["agent", "offered", "active"], "properties": {
    "agent": {"type": "string"}, "offered": {"type": "array", "items": CHAT},
    "active": {"type": "array", "items": CHAT}}}
