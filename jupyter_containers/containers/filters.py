"""docker's ``--filter`` semantics for containers and volumes."""

from __future__ import annotations


def labels_match(labels: dict, wanted: list[str]) -> bool:
    """Every ``key`` or ``key=value`` in ``wanted`` holds for ``labels``."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


CONTAINER_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "network", "volume",
                     "health", "before", "since", "publish", "expose", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(items) -> dict[str, list[str]]:
    """``["status=exited", "label=a=b"]`` (the CLI's repeated --filter) or a
    dict (docker-py) → ``{"status": ["exited"], "label": ["a=b"]}``."""
    from ..errors import UserError

    if not items:
        return {}
    if isinstance(items, dict):
        return {k: (list(v) if isinstance(v, (list, tuple)) else [str(v)]) for k, v in items.items()}
    result: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep:
            raise UserError(f"bad format of filter '{item}'", hint="expected name=value")
        result.setdefault(key.strip().lower(), []).append(value)
    return result


def container_matches(attrs: dict, filters: dict, *, resolve_container=None, image_matches=None) -> bool:
    """docker ps --filter semantics: values of one key are ORed, keys ANDed."""
    from ..errors import UserError

    for key, values in filters.items():
        if key not in CONTAINER_FILTERS:
            raise UserError(f"invalid filter '{key}'", hint="valid filters: " + ", ".join(CONTAINER_FILTERS))
        if not any(_match_one(attrs, key, v, resolve_container, image_matches) for v in values):
            return False
    return True


def _match_one(attrs, key, value, resolve_container, image_matches) -> bool:
    from ..errors import UserError

    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    if key == "id":
        return attrs["Id"].startswith(value)
    if key == "name":
        import re

        try:
            return re.search(value, attrs["Name"].lstrip("/")) is not None
        except re.error:
            return value in attrs["Name"]
    if key == "label":
        return labels_match(config.get("Labels") or {}, [value])
    if key == "status":
        if value not in STATUSES:
            raise UserError(f"invalid filter 'status={value}'", hint="use one of " + ", ".join(STATUSES))
        return state.get("Status") == value
    if key == "exited":
        return state.get("Status") == "exited" and str(state.get("ExitCode")) == value
    if key == "ancestor":
        return image_matches(attrs, value) if image_matches else value in (attrs.get("ImageName"), attrs.get("Image"))
    if key == "network":
        networks = ((attrs.get("NetworkSettings") or {}).get("Networks") or {})
        return value in networks or value == (attrs.get("HostConfig") or {}).get("NetworkMode")
    if key == "volume":
        return any(value in (m.get("Name"), m.get("Source"), m.get("Destination")) for m in attrs.get("Mounts", []))
    if key == "health":
        return ((state.get("Health") or {}).get("Status") or "none") == value
    if key in ("before", "since"):
        other = resolve_container(value) if resolve_container else None
        if other is None:
            return False
        return attrs["Created"] < other["Created"] if key == "before" else attrs["Created"] > other["Created"]
    if key == "publish":
        ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        port = value if "/" in value else f"{value}/tcp"
        return any(port == k or any(b and b.get("HostPort") == value.split("/")[0] for b in (v or []))
                   for k, v in ports.items())
    if key == "expose":
        port = value if "/" in value else f"{value}/tcp"
        return port in (config.get("ExposedPorts") or {})
    return False
