"""Text that docker users recognise: statuses, ages, ports, tables."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ..units import format_decimal, human_duration


def parse_time(text: str) -> float | None:
    """RFC 3339 (with nanoseconds) → Unix time; None for docker's zero time."""
    if not text or text.startswith("0001-"):
        return None
    main, _, rest = text.rstrip("Z").partition(".")
    fraction = float("0." + "".join(c for c in rest if c.isdigit())) if rest else 0.0
    moment = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.timestamp() + fraction


def ago(text: str, now: float | None = None) -> str:
    moment = parse_time(text)
    if moment is None:
        return ""
    return human_duration((now or time.time()) - moment) + " ago"


def container_status(attrs: dict, now: float | None = None) -> str:
    """docker ps's STATUS column."""
    state = attrs["State"]
    status = state["Status"]
    now = now or time.time()
    health = (state.get("Health") or {}).get("Status")
    if status in ("running", "paused"):
        started = parse_time(state.get("StartedAt", ""))
        text = "Up " + human_duration(now - started) if started else "Up"
        if status == "paused":
            text += " (Paused)"
        elif health:
            text += " (health: starting)" if health == "starting" else f" ({health})"
        return text
    if status == "restarting":
        return f"Restarting ({state.get('ExitCode', 0)}) {ago(state.get('FinishedAt', ''), now)}".rstrip()
    if status == "exited":
        finished = ago(state.get("FinishedAt", ""), now)
        return f"Exited ({state.get('ExitCode', 0)}) {finished}".rstrip()
    return status.capitalize()


def ports_text(ports: dict) -> str:
    """``0.0.0.0:8080->80/tcp, 443/tcp``."""
    parts = []
    for container_port, bindings in sorted((ports or {}).items()):
        if not bindings:
            parts.append(container_port)
            continue
        for binding in bindings:
            parts.append(f"{binding.get('HostIp') or '0.0.0.0'}:{binding.get('HostPort')}->{container_port}")
    return ", ".join(parts)


def command_text(attrs: dict, truncate: bool = True) -> str:
    command = " ".join([attrs.get("Path", ""), *attrs.get("Args", [])]).strip()
    if truncate and len(command) > 20:
        command = command[:19] + "…"
    return f'"{command}"'


def containers_table(containers, *, no_trunc: bool = False, size: bool = False):
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    rows = []
    for container in containers:
        attrs = container.attrs
        rows.append([
            attrs["Id"] if no_trunc else attrs["Id"][:12],
            attrs["Config"].get("Image") or attrs.get("ImageName", ""),
            command_text(attrs, truncate=not no_trunc),
            ago(attrs.get("Created", "")),
            container_status(attrs),
            ports_text((attrs.get("NetworkSettings") or {}).get("Ports") or {}),
            attrs["Name"].lstrip("/"),
        ])
    return headers, rows


def images_table(images, *, digests: bool = False, no_trunc: bool = False):
    headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    rows = []
    for image in images:
        attrs = image.attrs
        image_id = attrs["Id"] if no_trunc else attrs["Id"].split(":", 1)[-1][:12]
        digest_for = {}
        for repo_digest in attrs.get("RepoDigests") or []:
            repo, _, digest = repo_digest.partition("@")
            digest_for[repo] = digest
        tags = attrs.get("RepoTags") or []
        entries = [t.rsplit(":", 1) for t in tags] or [[r.partition("@")[0], "<none>"] for r in attrs.get("RepoDigests") or []] or [["<none>", "<none>"]]
        for repo, tag in entries:
            row = [repo, tag]
            if digests:
                row.append(digest_for.get(repo, "<none>"))
            row += [image_id, ago(attrs.get("Created", "")), format_decimal(attrs.get("Size", 0))]
            rows.append(row)
    return headers, rows


def stats_table(samples, names: dict):
    """docker stats' table from ``stats.ContainerStats`` objects."""
    headers = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    rows = []
    for sample in samples:
        shown = sample.display()
        shown["NAME"] = names.get(sample.id, sample.id[:12])
        rows.append([shown[h] for h in headers])
    return headers, rows
