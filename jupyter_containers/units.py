"""Docker's units: sizes (``512m``, ``1g``), durations (``30s``, ``1m30s``,
``1h``), with one-line errors for bad values."""

from __future__ import annotations

import re

from .errors import UserError

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_FACTORS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_size(value, *, what: str = "size") -> int:
    """``512m`` → 536870912. Integers pass through. Binary units, as docker."""
    if isinstance(value, bool):
        raise UserError(f"invalid {what} {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    match = _SIZE_RE.match(str(value))
    if not match:
        raise UserError(f"invalid {what} '{value}'",
                        hint="use a number with an optional unit b, k, m, g (e.g. 512m)")
    number, unit, _ = match.groups()
    return int(float(number) * _SIZE_FACTORS[unit.lower()])


def parse_duration(value, *, what: str = "duration") -> float:
    """Seconds from ``30s``, ``1m30s``, ``500ms``, ``2h`` or a bare number
    of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UserError(f"invalid {what} '{value}'", hint="use e.g. 30s, 1m30s, 500ms or 2h")
    return sum(float(n) * _DURATION_FACTORS[u] for n, u in parts)


def human_size(size: float) -> str:
    """Decimal units, as ``docker images`` shows them: 1.23MB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(size)}B"
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{size}TB"


def human_binary_size(size: float) -> str:
    """Binary units, as ``docker stats`` shows memory: 1.5MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.4g}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1024
    return f"{size}TiB"


def human_duration(seconds: float) -> str:
    """``docker ps`` style: 'Less than a second', '3 seconds', '2 minutes'…"""
    seconds = int(seconds)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    days = hours // 24
    if days < 14:
        return f"{days} days"
    if days < 60:
        return f"{days // 7} weeks"
    if days < 730:
        return f"{days // 30} months"
    return f"{days // 365} years"
