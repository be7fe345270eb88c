"""The messages a page may send, and their fields. Anything else is refused with a clear error."""

from __future__ import annotations

import json
from typing import Any

MAX_SDP = 60 * 1024
MAX_CHAT = 2000

# type -> field -> (python type, max length for strings)
MESSAGES: dict[str, dict[str, tuple[type, int]]] = {
    "ping": {},
    "join": {},
    "leave": {},
    "answer": {"sdp": (str, MAX_SDP)},
    "screen": {"on": (bool, 0)},
    "media": {"audio": (bool, 0), "video": (bool, 0)},
    "chat": {"text": (str, MAX_CHAT)},
    "record": {"action": (str, 16)},
    "consent": {"request": (str, 64), "prompt": (str, 64), "answer": (str, 16)},
    "withdraw": {},
}


RECORD_ACTIONS = ("request", "stop", "ask_again")


class Invalid(ValueError):
    pass


def parse(data: str) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except ValueError:
        raise Invalid("That message is not valid JSON.") from None
    except RecursionError:  # a few thousand nested brackets fit in one message
        raise Invalid("That message is nested too deeply.") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise Invalid("A message is a JSON object with a string 'type'.")
    fields = MESSAGES.get(message["type"])
    if fields is None:
        raise Invalid(f"Unknown message type {message['type'][:40]!r}.")
    for name, (kind, limit) in fields.items():
        value = message.get(name)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise Invalid(f"'{message['type']}' needs a {kind.__name__} field '{name}'.")
        if isinstance(value, str) and len(value) > limit:
            raise Invalid(f"Field '{name}' is too long.")
    if message["type"] == "record" and message["action"] not in RECORD_ACTIONS:
        raise Invalid(f"'record' action is one of {', '.join(RECORD_ACTIONS)}.")
    if message["type"] == "consent" and message["answer"] not in ("accept", "decline"):
        raise Invalid("A consent answer is 'accept' or 'decline'.")
    return message
