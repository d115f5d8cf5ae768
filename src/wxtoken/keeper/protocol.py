"""The token socket's request line: parsed within fixed bounds, or refused with a short reason.

Anything a local program sends is read as untrusted: at most `MAX_REQUEST` bytes, strict UTF-8,
JSON nested at most `MAX_DEPTH` deep (checked before parsing, so a line of brackets cannot
exhaust the parser's recursion), an object, and fields of the right type and range. A refusal
names the rule that was broken and never repeats the input, which may be anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .._local import DEFAULT_MIN_VALID, MAX_MIN_VALID
from ..errors import EXIT_USAGE, UsageError
from ..profile import validate_name

MAX_REQUEST = 4096  # bytes, newline included: a request is one short line
MAX_DEPTH = 4  # a request is a flat object; a little room for fields added later
# The same ceiling as `wxtoken token --min-valid`: beyond about three years nothing is "fresh",
# and an unbounded value would make every request a refresh at Webex.


class BadRequest(ValueError):
    """A request the keeper will not act on; the message is safe to send back and to log."""


@dataclass(frozen=True)
class Ping:
    """Is a keeper answering here? (`wxtoken status` asks.)"""


@dataclass(frozen=True)
class TokenRequest:
    profile: str | None
    min_valid: float = float(DEFAULT_MIN_VALID)


def parse_request(line: bytes) -> Ping | TokenRequest:
    if len(line) > MAX_REQUEST:
        raise BadRequest(f"the request is longer than {MAX_REQUEST} bytes")
    if not line.strip():
        raise BadRequest("the request is empty")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request is not UTF-8") from None
    if not _depth_within(text, MAX_DEPTH):
        raise BadRequest(f"the request is nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadRequest("the request is not one JSON object") from None
    if not isinstance(data, dict):
        raise BadRequest("the request is not one JSON object")
    if data.get("ping") is True:
        return Ping()
    return TokenRequest(_profile(data.get("profile")), _min_valid(data))


def bad_request_answer(exc: BadRequest) -> dict[str, Any]:
    return {
        "ok": False,
        "exit_code": EXIT_USAGE,
        "error": f"malformed request to the keeper socket: {exc}",
    }


def _depth_within(text: str, limit: int) -> bool:
    """Whether brackets outside JSON strings nest at most `limit` deep."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _no_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON and mean nothing here.
    raise ValueError(name)


def _profile(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("profile must be a profile name (a string)")
    try:
        return validate_name(value)
    except UsageError:
        raise BadRequest("profile is not a valid profile name") from None


def _min_valid(data: dict[str, Any]) -> float:
    value = data.get("min_valid", DEFAULT_MIN_VALID)
    # bool is an int to Python, and a string would be converted by float(): both are refused.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("min_valid must be a number of seconds")
    if not (0 <= value <= MAX_MIN_VALID) or not math.isfinite(value):
        raise BadRequest(f"min_valid must be from 0 to {MAX_MIN_VALID} seconds")
    return float(value)
