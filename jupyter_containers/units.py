"""Docker's units: size and CPU flags in, human-readable sizes out.

Shared by every flag that takes a size (``--memory``, ``--memory-swap``,
``--shm-size``, ``--tmpfs size=``, log ``max-size``) and by every frontend that
shows sizes. Standard library only.
"""

from __future__ import annotations

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
