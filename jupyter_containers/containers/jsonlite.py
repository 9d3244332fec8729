"""JSON output without importing :mod:`json` (whose import costs about
10 ms through :mod:`re`): the start hook writes the container's state with
this. ``_json`` is the C accelerator module, cheap to import."""

from __future__ import annotations

from _json import encode_basestring_ascii as _quote


def dumps(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_quote(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")
