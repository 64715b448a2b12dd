"""What a request may ask for: the server's bounds (Limits) and the checks of
each field of a request, which fail with one message naming the field, what
was expected and what came (HTTP 400, or 413 for a text over its length)."""
import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    body_bytes: int = 64 * 1024         # any request body
    gates_chars: int = 2000             # text on the Gates page
    gates_cells: int = 3_000_000        # tokens x units x maps sent back for one text
    search_corpus_tokens: int = 100_000 # tokens of reference text the pattern search reads, per run and layer
    search_results: int = 50
    prime_chars: int = 500
    generate_tokens: int = 2000
    translate_chars: int = 300
    beam: int = 10
    gradient_steps: int = 1000
    gradient_units: int = 128
    gradient_batch: int = 16
    streams: int = 16                   # generations streaming at once
    heavy_jobs: int = 2                 # gradient experiments at once (the machine has few cores)
    loaded_models: int = 4              # models kept in memory (least recently used leaves first)

    def to_dict(self):
        return asdict(self)


class RequestError(Exception):
    """A request the server refuses, with the HTTP status and one message."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def text(body, name, max_chars, required=True, default=""):
    v = body.get(name, None if required else default)
    if v is None:
        raise RequestError(f"{name}: missing; expected a text")
    if not isinstance(v, str):
        raise RequestError(f"{name}: expected a text, got {type(v).__name__}")
    if len(v) > max_chars:
        raise RequestError(f"{name}: {len(v):,} characters; at most {max_chars:,} are accepted", 413)
    return v


def integer(body, name, lo, hi, default=None):
    v = body.get(name, default)
    if v is None and default is None:
        if name not in body:
            raise RequestError(f"{name}: missing; expected an integer from {lo} to {hi}")
        return None
    if isinstance(v, str):
        try:
            v = int(v.strip())
        except ValueError:
            raise RequestError(f"{name}: expected an integer from {lo} to {hi}, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, int):
        raise RequestError(f"{name}: expected an integer from {lo} to {hi}, got {v!r}")
    if not lo <= v <= hi:
        raise RequestError(f"{name}: expected an integer from {lo} to {hi}, got {v}")
    return v


def optional_integer(body, name, lo, hi):
    """An integer, or None when absent, null or empty."""
    v = body.get(name)
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    return integer({name: v}, name, lo, hi)


def number(body, name, lo, hi, default=None):
    v = body.get(name, default)
    if v is None:
        raise RequestError(f"{name}: missing; expected a number from {lo} to {hi}")
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise RequestError(f"{name}: expected a number from {lo} to {hi}, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RequestError(f"{name}: expected a number from {lo} to {hi}, got {v!r}")
    if not lo <= v <= hi:
        raise RequestError(f"{name}: expected a number from {lo} to {hi}, got {v}")
    return float(v)


def choice(body, name, choices, default=None):
    v = body.get(name, default)
    if v not in choices:
        raise RequestError(f"{name}: expected one of {', '.join(map(str, choices))}; got {v!r}")
    return v
