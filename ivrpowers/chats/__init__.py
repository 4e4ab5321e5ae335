"""Web chats: tasks on the ACD's router (channel `chat`), their messages both ways and their
transcripts (`service.ChatService`, `desk.ChatDesk`, the API's bodies and limits in `schemas`)."""
