"""Configuration: traitlets ``Configurable`` classes read from the Jupyter
config path.

Options live in ``jupyter_containers_config.json`` or
``jupyter_containers_config.py`` in any directory of ``jupyter --paths``'
config list (``JUPYTER_CONFIG_DIR`` relocates the user's one, as for every
Jupyter application). The Jupyter server extension also honours the same
classes in ``jupyter_server_config.*``. Every option is documented in
``docs/config.md``; ``jupyter-containers config`` prints the effective values.

Example ``jupyter_containers_config.json``::

    {"Registry": {"mirrors": {"docker.io": ["http://127.0.0.1:5000"]},
                  "insecure": ["registry.lan:5000"]}}
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, default
from traitlets.config import Config, Configurable

CONFIG_BASENAME = "jupyter_containers_config"


class Storage(Configurable):
    """Where images, snapshots, containers and volumes live on disk."""

    root = Unicode(
        help="""Storage root. Default: /var/lib/jupyter-containers for root,
        $XDG_DATA_HOME/jupyter-containers (~/.local/share/jupyter-containers)
        otherwise. The JUPYTER_CONTAINERS_ROOT environment variable overrides
        both this option and the default.""",
    ).tag(config=True)

    run_root = Unicode(
        help="""Directory for runtime state that does not survive a reboot
        (monitor sockets, pids). Default: /run/jupyter-containers for root,
        $XDG_RUNTIME_DIR/jupyter-containers otherwise. A subdirectory per
        storage root is used below it. JUPYTER_CONTAINERS_RUN_ROOT overrides.""",
    ).tag(config=True)

    @default("root")
    def _default_root(self):
        if os.geteuid() == 0:
            return "/var/lib/jupyter-containers"
        data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
        return os.path.join(data, "jupyter-containers")

    @default("run_root")
    def _default_run_root(self):
        if os.geteuid() == 0:
            return "/run/jupyter-containers"
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/jupyter-containers-{os.geteuid()}"
        return os.path.join(runtime, "jupyter-containers")


class Registry(Configurable):
    """How images are fetched from registries."""

    mirrors = Dict(
        value_trait=List(Unicode()),
        key_trait=Unicode(),
        help="""Mirrors to try, in order, before a registry itself, by registry
        host: {"docker.io": ["http://127.0.0.1:5000"]}. A mirror URL may say
        http:// for a plain-HTTP mirror. The registry itself is tried last
        unless mirrors_only is set.""",
    ).tag(config=True)

    mirrors_only = Bool(
        False,
        help="""Never fall back from the mirrors to the registry itself (for
        offline classrooms and tests).""",
    ).tag(config=True)

    offline = Bool(
        help="""Never contact a registry: a pull (and run --pull always)
        uses the image already on this computer, as the offline classroom kit
        (`jupyter-containers lesson-images`) stores them, and fails if there
        is none. Default: true when the environment variable
        JUPYTER_CONTAINERS_OFFLINE is 1.""",
    ).tag(config=True)

    @default("offline")
    def _default_offline(self):
        return os.environ.get("JUPYTER_CONTAINERS_OFFLINE") == "1"

    insecure = List(
        Unicode(),
        help="""Registry hosts (host or host:port) reached over plain HTTP.
        Loopback registries (localhost, 127.0.0.0/8, ::1) may use HTTP without
        being listed here.""",
    ).tag(config=True)

    max_concurrent_downloads = Int(
        3, help="How many layers of one pull are downloaded at the same time."
    ).tag(config=True)

    retries = Int(
        5,
        help="""How often a request is retried after a dropped connection, 429
        or 5xx answer, with exponential backoff.""",
    ).tag(config=True)

    backoff = Float(
        0.5, help="First retry delay in seconds; doubled each retry (capped at 10 s)."
    ).tag(config=True)

    timeout = Float(
        30.0, help="Seconds to wait for a registry to answer before retrying."
    ).tag(config=True)

    platform = Unicode(
        "",
        help="""Default platform (os/arch[/variant]) chosen from multi-platform
        images. Empty: the host's own.""",
    ).tag(config=True)

    docker_config = Unicode(
        help="""Path of the docker client config holding credentials
        (auths, credsStore, credHelpers). Default: $DOCKER_CONFIG/config.json
        or ~/.docker/config.json.""",
    ).tag(config=True)

    @default("docker_config")
    def _default_docker_config(self):
        base = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
        return os.path.join(base, "config.json")


class Runtime(Configurable):
    """How containers are run."""

    log_max_size = Int(
        10 * 1024 * 1024,
        help="""Bytes a container's log file may reach before it is rotated
        (docker's json-file max-size). 0: never rotate.""",
    ).tag(config=True)

    log_max_files = Int(
        3, help="How many log files (current plus rotated) a container keeps (max-file)."
    ).tag(config=True)

    stop_timeout = Int(
        10, help="Seconds `stop` waits after the stop signal before SIGKILL (docker's -t)."
    ).tag(config=True)

    seccomp_profile = Unicode(
        "",
        help="""Path of the default seccomp profile (docker's JSON format).
        Empty: the built-in copy of Docker's default allow-list.""",
    ).tag(config=True)

    cgroup_parent = Unicode(
        "jupyter-containers",
        help="""Cgroup below which containers' cgroups are created, relative
        to the root of each cgroup hierarchy (docker's cgroupfs driver uses
        "docker"). A relative path of plain names; it must belong to
        jupyter-containers alone, as leftovers under it are swept.""",
    ).tag(config=True)


class Network(Configurable):
    """Container networking."""

    bridge_name = Unicode(
        "jc0", help="Name of the Linux bridge of the default `bridge` network."
    ).tag(config=True)

    bridge_subnet = Unicode(
        "10.213.0.0/24",
        help="""Subnet of the default `bridge` network. The default avoids
        docker's 172.17.0.0/16 and podman's 10.88.0.0/16.""",
    ).tag(config=True)

    user_subnet_pool = Unicode(
        "10.213.0.0/16",
        help="""Pool that `network create` takes /24 subnets from when none is
        given (the default bridge's subnet is never handed out, nor any
        subnet that overlaps a route or address of the host).""",
    ).tag(config=True)

    firewall_backend = Enum(
        ["auto", "nftables", "iptables"],
        default_value="auto",
        help="""How forwarding, masquerade and published-port rules are
        installed. `nftables`: a table of the project's own
        (`ip jupyter_containers_<tag>`, one per storage root). `iptables`:
        chains `JC-<tag>-…` jumped to from the built-in chains. `auto`:
        iptables when the host's iptables FORWARD policy is DROP (docker
        installed: an nftables accept cannot overrule an iptables drop),
        else nftables when `nft` is installed, else iptables.""",
    ).tag(config=True)

    ip_forward = Enum(
        ["leave", "enable"],
        default_value="leave",
        help="""`net.ipv4.ip_forward` is the host's setting. `leave`: never
        touch it; when it is 0, containers reach the host and each other but
        not other networks (a warning says so). `enable`: set it to 1 when a
        bridge network is brought up (it is never reset, as with docker).""",
    ).tag(config=True)

    mtu = Int(
        0,
        help="""MTU of the bridges and container interfaces. 0: the kernel's
        default (1500).""",
    ).tag(config=True)


_lock = threading.Lock()
_loaded: Config | None = None


def config_paths() -> list[str]:
    """The Jupyter config directories, highest priority first."""
    from jupyter_core.paths import jupyter_config_path

    return jupyter_config_path()


def load_config(paths: list[str] | None = None) -> Config:
    """Read every ``jupyter_containers_config.{json,py}`` on the config path;
    a file earlier in the path (the user's) overrides a later one (the
    system's), as for every Jupyter application."""
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    merged = Config()
    for directory in reversed(paths if paths is not None else config_paths()):
        for suffix, loader_class in ((".json", JSONFileConfigLoader), (".py", PyFileConfigLoader)):
            filename = CONFIG_BASENAME + suffix
            if os.path.isfile(os.path.join(directory, filename)):
                loader = loader_class(filename, path=directory)
                merged.merge(loader.load_config())
    return merged


def get_config() -> Config:
    """The configuration read from disk, loaded once per process."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_config()
        return _loaded


def reset() -> None:
    """Forget the cached configuration (tests, or after editing the files)."""
    global _loaded
    with _lock:
        _loaded = None


def storage_root(config: Config | None = None) -> Path:
    """The storage root: $JUPYTER_CONTAINERS_ROOT, else configuration, else
    the default for this user."""
    env = os.environ.get("JUPYTER_CONTAINERS_ROOT")
    if env:
        return Path(env).absolute()
    return Path(Storage(config=config if config is not None else get_config()).root).absolute()


def run_root(config: Config | None = None) -> Path:
    env = os.environ.get("JUPYTER_CONTAINERS_RUN_ROOT")
    if env:
        return Path(env).absolute()
    return Path(Storage(config=config if config is not None else get_config()).run_root).absolute()


def configurables() -> list[type[Configurable]]:
    """Every configurable class, for documentation and ``config`` output."""
    return [Storage, Registry, Runtime, Network]


def document() -> str:
    """docs/config.md: every option of every class, from the traits' help
    (a test keeps the committed file equal to this)."""
    import textwrap

    lines = [
        "# Configuration",
        "",
        "jupyter-containers reads `jupyter_containers_config.json` and `jupyter_containers_config.py`",
        "from every directory of the Jupyter config path (`jupyter --paths`; `JUPYTER_CONFIG_DIR`",
        "relocates the user's own), the user's overriding the system's. The Jupyter server extension",
        "also honours these classes in `jupyter_server_config.*`. `jupyter-containers config` prints",
        "the effective values.",
        "",
        "```json",
        '{"Registry": {"mirrors": {"docker.io": ["http://127.0.0.1:5000"]}}}',
        "```",
        "",
        "Environment variables: `JUPYTER_CONTAINERS_ROOT` (storage root), `JUPYTER_CONTAINERS_RUN_ROOT`",
        "(runtime state), `JUPYTER_CONTAINERS_LOCK` (the image lock file in effect),",
        "`JUPYTER_CONTAINERS_OFFLINE=1` (the default of `Registry.offline`).",
        "",
        "<!-- generated by jupyter_containers.config.document(); tests check it is current -->",
    ]
    for cls in configurables():
        lines += ["", f"## {cls.__name__}", "", textwrap.dedent(cls.__doc__ or "").strip(), ""]
        for name in sorted(cls.class_trait_names(config=True)):
            trait = cls.class_traits()[name]
            default = trait.default_value_repr()
            if cls is Storage or (cls is Registry and name == "docker_config"):
                default = "(see the description)"
            help_text = " ".join(textwrap.dedent(trait.help or "").split())
            lines.append(f"- `{cls.__name__}.{name}` ({type(trait).__name__}, default `{default}`): {help_text}")
    return "\n".join(lines) + "\n"
