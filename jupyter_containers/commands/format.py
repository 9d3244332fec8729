"""Text that docker users recognise: statuses, ages, ports, tables."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

from ..errors import UserError
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


# --- inspect -f: docker's Go templates, the part docker users type --------------

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_STRING = r'"(?:[^"\\]|\\.)*"'
#: A term: a parenthesised expression (one level of nesting) with an
#: optional field path after it, a string, or any other word.
_WORD = re.compile(rf'\((?:[^()"]|{_STRING}|\([^()]*\))*\)[\w.]*|{_STRING}|[^\s()]+')


def render_template(template: str, item: dict) -> str:
    """``inspect -f``: docker's Go templates as users write them —
    ``{{.State.Status}}``, ``{{json .Config}}``, ``{{index .Labels "k"}}``,
    ``{{(index .IPAM.Config 0).Subnet}}``,
    ``{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}``, and the
    functions json, index, len, join, lower, upper; values print as Go
    prints them. A template without ``{{`` is a Python format string
    (``{State[Status]}``) or a top-level key."""
    if "{{" not in template:
        return template.format(**item) if "{" in template else str(item.get(template, ""))
    tokens, position = [], 0
    for match in _ACTION.finditer(template):
        tokens += [template[position:match.start()], ("action", match.group(1))]
        position = match.end()
    tokens.append(template[position:])
    return _render(_parse(tokens, template), item, template)


def _parse(tokens: list, template: str, inside: bool = False) -> list:
    nodes = []
    while tokens:
        token = tokens.pop(0)
        if isinstance(token, str):
            nodes.append(token)
        elif token[1] == "end":
            if not inside:
                raise UserError(f"template error in '{template}': {{{{end}}}} without {{{{range}}}}")
            return nodes
        elif token[1].startswith("range "):
            nodes.append(("range", token[1][6:], _parse(tokens, template, inside=True)))
        else:
            nodes.append(("value", token[1]))
    if inside:
        raise UserError(f"template error in '{template}': {{{{range}}}} without {{{{end}}}}")
    return nodes


def _render(nodes: list, dot, template: str) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "value":
            out.append(_go_text(_evaluate(node[1], dot, template)))
        else:
            collection = _evaluate(node[1], dot, template)
            elements = [collection[k] for k in sorted(collection)] if isinstance(collection, dict) else \
                list(collection or [])
            out.extend(_render(node[2], element, template) for element in elements)
    return "".join(out)


_FUNCTIONS = {
    "json": lambda value: json.dumps(value, separators=(",", ":")),
    "len": len,
    "join": lambda values, separator: separator.join(str(v) for v in values),
    "lower": lambda text: str(text).lower(),
    "upper": lambda text: str(text).upper(),
}


def _evaluate(expression: str, dot, template: str):
    words = _WORD.findall(expression)
    if not words:
        raise UserError(f"template error in '{template}': empty action")
    head, arguments = words[0], [_term(word, dot, template) for word in words[1:]]
    if head == "index":
        value = arguments[0] if arguments else None
        for key in arguments[1:]:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                raise UserError(f"template error in '{template}': no entry {key!r}") from None
        return value
    if head in _FUNCTIONS:
        try:
            return _FUNCTIONS[head](*arguments)
        except TypeError:
            raise UserError(f"template error in '{template}': wrong arguments for {head}") from None
    if arguments:
        raise UserError(f"unsupported template function '{head}' in '{template}'",
                        hint="use fields (.A.B), range, json, index, len, join, lower or upper")
    return _term(head, dot, template)


def _term(word: str, dot, template: str):
    if word.startswith("("):
        close = word.rindex(")")
        return _field(_evaluate(word[1:close], dot, template), word[close + 1:], template)
    if word.startswith('"'):
        return json.loads(word)
    if word.lstrip("-").isdigit():
        return int(word)
    if word.startswith("."):
        return _field(dot, word, template)
    raise UserError(f"unsupported template function '{word}' in '{template}'",
                    hint="use fields (.A.B), range, json, index, len, join, lower or upper")


def _field(value, path: str, template: str):
    for name in filter(None, path.split(".")):
        if not isinstance(value, dict) or name not in value:
            raise UserError(f"template error in '{template}': no field {name}")
        value = value[name]
    return value


def _go_text(value) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_text(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_text(v) for v in value) + "]"
    return str(value)
