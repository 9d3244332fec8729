"""Docker's units: size and CPU flags in, human-readable sizes out.

Shared by every flag that takes a size (``--memory``, ``--memory-swap``,
``--shm-size``, ``--tmpfs size=``, log ``max-size``) and by every frontend that
shows sizes. Standard library only.
"""

from __future__ import annotations

import re

from .errors import UserError

_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text, flag: str = "size") -> int:
    """Bytes from docker's size syntax: a number with an optional binary
    suffix ``b``, ``k``, ``m``, ``g``, ``t``, ``p`` (any case, optionally
    followed by ``b`` or ``ib``): ``512m``, ``1g``, ``1.5GiB``, ``100k``,
    ``4096``. An int is taken as bytes already."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    raw = str(text).strip()
    lowered = raw.lower()
    for ending in ("ib", "b"):
        if len(lowered) > len(ending) and lowered.endswith(ending) and lowered[-len(ending) - 1] in "kmgtp":
            lowered = lowered[: -len(ending)]
            break
    suffix = lowered[-1:] if lowered[-1:] in _BINARY else ""
    number = lowered[: len(lowered) - len(suffix)].strip()
    whole, dot, fraction = number.partition(".")
    if not _digits(whole) or (dot and not _digits(fraction)):
        raise UserError(f"invalid {flag} '{raw}'", hint="give bytes or a number with a unit: 512m, 1g, 100k, 4096")
    return int(float(number) * _BINARY[suffix])


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_swap(text, flag: str = "--memory-swap") -> int:
    """``--memory-swap``: a size, or ``-1`` for unlimited swap."""
    if str(text).strip() == "-1":
        return -1
    return parse_size(text, flag)


def parse_cpus(text, flag: str = "--cpus") -> int:
    """Nano-CPUs (docker's NanoCpus) from a decimal number of CPUs: ``0.5``
    gives 500000000."""
    raw = str(text).strip()
    whole, _, fraction = raw.partition(".")
    if not (whole or fraction) or not _digits(whole or "0") or not _digits(fraction or "0"):
        raise UserError(f"invalid {flag} '{raw}'", hint="give a decimal number of CPUs such as 0.5 or 2")
    if len(fraction.rstrip("0")) > 9:
        raise UserError(f"invalid {flag} '{raw}': value is too precise", hint="use at most 9 decimals")
    return int(whole or 0) * 10**9 + int((fraction + "0" * 9)[:9])


def _format(value: float, base: int, units: tuple[str, ...]) -> str:
    index = 0
    while value >= base and index < len(units) - 1:
        value /= base
        index += 1
    return f"{value:.4g}{units[index]}"


def format_binary(size: float) -> str:
    """``1.5MiB``: how docker shows memory (units.BytesSize)."""
    return _format(float(size), 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"))


def format_decimal(size: float) -> str:
    """``1.5MB``: how docker shows I/O and image sizes (units.HumanSize)."""
    return _format(float(size), 1000, ("B", "kB", "MB", "GB", "TB", "PB"))


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_FACTORS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(value, flag: str = "duration") -> float:
    """Seconds from docker's durations (``30s``, ``1m30s``, ``500ms``,
    ``2h``) or a bare number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UserError(f"invalid {flag} '{value}'", hint="use e.g. 30s, 1m30s, 500ms or 2h")
    return sum(float(n) * _DURATION_FACTORS[u] for n, u in parts)


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
