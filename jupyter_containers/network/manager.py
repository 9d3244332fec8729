"""NetworkManager: networks, and the network side of each container.

The state is read and written under the ``networks`` file lock by every
process (kernel, server, CLI, a container's exit hook), each file replaced
atomically on change:

- ``<storage root>/networks/networks.json``: the networks, and which firewall
  backend holds the rules; written durably (fsync).
- ``<storage root>/networks/containers.json``: per attached container its
  endpoints (the address leases), published ports and name entries, and the
  last address given per network. Not fsynced: what it describes (namespaces,
  veths, rules) is gone after a power cut as well, and an fsync costs more
  than all the rest of an attach on a busy disk.

The kernel objects (bridges, veth pairs, namespace files, firewall rules)
follow from the state; a change is recorded before the objects are made, so
that whatever a crash leaves behind is named in the state and
:meth:`NetworkManager.sweep` can remove it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field

from ..errors import Conflict, ContainerNotFound, NetworkNotFound, RuntimeFailure, UserError
from ..storage import Layout, read_json, write_json
from . import firewall, hosts, ipam, links, netns
from .ports import PortBinding, PortSpec, parse_port_spec, ports_dict, reserve

DEFAULT = "bridge"
HOST = "host"
NONE = "none"
PREDEFINED = (DEFAULT, HOST, NONE)
_SAVED = "networks as last read or written"  # key of the state dict, never written

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Network:
    """A network as ``network ls``/``inspect`` show it."""

    name: str
    id: str
    driver: str = "bridge"
    created: str = ""
    subnet: str = ""
    gateway: str = ""
    bridge: str = ""
    internal: bool = False
    labels: dict = field(default_factory=dict)
    mtu: int = 0
    #: container id -> {"Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"}
    containers: dict = field(default_factory=dict)

    def inspect(self) -> dict:
        options = {"com.docker.network.bridge.name": self.bridge} if self.bridge else {}
        if self.mtu:
            options["com.docker.network.driver.mtu"] = str(self.mtu)
        return {
            "Name": self.name, "Id": self.id, "Created": self.created, "Scope": "local",
            "Driver": self.driver, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": self.subnet, "Gateway": self.gateway}] if self.subnet else []},
            "Internal": self.internal, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Containers": dict(self.containers), "Options": options, "Labels": dict(self.labels),
        }


@dataclass
class NetworkSettings:
    """The network side of one container: what ``inspect`` shows as
    NetworkSettings, the content of its ``/etc/hosts``, and — from
    :meth:`NetworkManager.attach` only — the sockets that hold its published
    host ports, which must stay open for the container's lifetime."""

    mode: str  # "bridge" (any bridge networks), "none" or "host"
    sandbox_key: str | None  # the network namespace file; None for --network host
    networks: dict  # network name -> endpoint dict, as in inspect
    ports: list[PortBinding]
    #: makes the ``/etc/hosts`` content when asked (``inspect``, ``ps``
    #: and the proxy read these settings often, and never need it)
    hosts_source: object = field(default=str, repr=False, compare=False)
    sockets: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def hosts(self) -> str:
        """The content of the container's ``/etc/hosts``."""
        return self.hosts_source()

    def inspect(self) -> dict:
        default = self.networks.get(DEFAULT, {})
        return {
            "Bridge": "", "SandboxID": "", "SandboxKey": self.sandbox_key or "",
            "HairpinMode": False, "Ports": ports_dict(self.ports),
            "EndpointID": default.get("EndpointID", ""), "Gateway": default.get("Gateway", ""),
            "IPAddress": default.get("IPAddress", ""), "IPPrefixLen": default.get("IPPrefixLen", 0),
            "MacAddress": default.get("MacAddress", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
            "Networks": {name: dict(endpoint) for name, endpoint in self.networks.items()},
        }


class NetworkManager:
    """Bridge networks and container attachments of one storage root.

    ``settings`` is a :class:`jupyter_containers.config.Network`; by default
    it is read from the Jupyter config files. Every method may be called from
    any thread and any process: changes are serialised by a file lock.
    """

    def __init__(self, layout: Layout, settings=None):
        """``settings``: a ``config.Network``, or any object with its
        attributes (the exit hook passes plain values, to spare itself
        traitlets); by default read from the configuration files."""
        self.layout = layout
        if settings is None:
            from .. import config as _config

            settings = _config.Network(config=_config.get_config())
        self.settings = settings
        self.tag = layout.run.name  # 12 hex digits naming this storage root
        self.netns_dir = layout.run / "netns"
        self._networks_path = layout.networks / "networks.json"
        self._containers_path = layout.networks / "containers.json"
        self._default_id = self._predefined_id(DEFAULT)

    def _predefined_id(self, name: str) -> str:
        """The id of ``bridge``, ``host`` or ``none``: stable per storage root."""
        return hashlib.sha256(f"{self.layout.root}\0{name}".encode()).hexdigest()

    # --- state ------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        self.layout.networks.mkdir(parents=True, exist_ok=True, mode=0o711)
        with self.layout.lock("networks"):
            yield self._load()

    def _load(self) -> dict:
        networks = read_json(self._networks_path, default={})
        containers = read_json(self._containers_path, default={})
        state = {"networks": networks.get("networks", {}), "firewall": networks.get("firewall"),
                 "firewall_warnings": networks.get("firewall_warnings", []),
                 "containers": containers.get("containers", {}), "last_ip": containers.get("last_ip", {})}
        state[_SAVED] = json.dumps(self._networks_part(state), sort_keys=True)
        return state

    @staticmethod
    def _networks_part(state: dict) -> dict:
        return {key: state[key] for key in ("networks", "firewall", "firewall_warnings")}

    def _save(self, state: dict) -> None:
        networks = self._networks_part(state)
        serialized = json.dumps(networks, sort_keys=True)
        if serialized != state[_SAVED]:
            write_json(self._networks_path, networks, mode=0o600)
            state[_SAVED] = serialized
        write_json(self._containers_path, {"containers": state["containers"], "last_ip": state["last_ip"]},
                   mode=0o600, durable=False)

    def _default_record(self) -> dict:
        subnet = ipam.parse_subnet(self.settings.bridge_subnet)
        return {"name": DEFAULT, "id": self._default_id, "created": "", "subnet": str(subnet),
                "gateway": ipam.gateway_for(subnet), "bridge": self.settings.bridge_name,
                "internal": False, "labels": {}, "mtu": self.settings.mtu, "up": False}

    def _records(self, state: dict) -> list[dict]:
        """Every bridge network, the default one included (from the
        configuration while it has not been brought up)."""
        records = list(state["networks"].values())
        if self._default_id not in state["networks"]:
            records.insert(0, self._default_record())
        return records

    def _find(self, state: dict, name_or_id: str) -> dict:
        if name_or_id in (HOST, NONE):
            return {"name": name_or_id, "id": self._predefined_id(name_or_id),
                    "driver": "null" if name_or_id == NONE else HOST}
        records = self._records(state)
        for record in records:
            if name_or_id in (record["name"], record["id"]):
                return record
        matches = [r for r in records if name_or_id and r["id"].startswith(name_or_id)]
        if len(matches) == 1:
            return matches[0]
        raise NetworkNotFound(f"network {name_or_id} not found", hint="see `network ls`")

    def _to_network(self, state: dict, record: dict) -> Network:
        if record.get("driver"):  # host, none
            members = {cid: c for cid, c in state["containers"].items() if c["mode"] == record["name"]}
            return Network(record["name"], record["id"], driver=record["driver"], containers={
                cid: {"Name": c["name"], "EndpointID": "", "MacAddress": "", "IPv4Address": "",
                      "IPv6Address": ""} for cid, c in members.items()})
        containers = {}
        prefix = ipam.parse_subnet(record["subnet"]).prefixlen
        for cid, container in state["containers"].items():
            for endpoint in container["endpoints"]:
                if endpoint["network_id"] == record["id"]:
                    containers[cid] = {"Name": container["name"], "EndpointID": endpoint["endpoint_id"],
                                       "MacAddress": endpoint["mac"],
                                       "IPv4Address": f"{endpoint['ip']}/{prefix}", "IPv6Address": ""}
        return Network(record["name"], record["id"], created=record["created"], subnet=record["subnet"],
                       gateway=record["gateway"], bridge=record["bridge"], internal=record["internal"],
                       labels=record["labels"], mtu=record["mtu"], containers=containers)

    # --- networks ---------------------------------------------------------

    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               labels: dict | None = None, internal: bool = False) -> Network:
        """``network create``: a bridge network with its own subnet (a free
        /24 of ``Network.user_subnet_pool`` unless given), brought up at
        once."""
        if not _NAME.match(name or ""):
            raise UserError(f"invalid network name {name!r}",
                            hint="use letters, digits, '_', '.' and '-', starting with a letter or digit")
        if gateway and not subnet:
            raise UserError("--gateway needs --subnet")
        with self._locked() as state:
            if name in PREDEFINED or any(r["name"] == name for r in state["networks"].values()):
                raise Conflict(f"network with name {name} already exists")
            others = [ipam.parse_subnet(r["subnet"]) for r in self._records(state)]
            host_subnets = links.host_subnets(exclude_interfaces=[r["bridge"] for r in self._records(state)])
            if subnet:
                wanted = ipam.parse_subnet(subnet)
                for record in self._records(state):
                    if wanted.overlaps(ipam.parse_subnet(record["subnet"])):
                        raise Conflict(f"subnet {wanted} overlaps network {record['name']} ({record['subnet']})")
                for taken in host_subnets:
                    if wanted.overlaps(taken):
                        raise Conflict(f"subnet {wanted} overlaps {taken}, which this host already routes",
                                       hint="choose another --subnet")
            else:
                wanted = ipam.pick_subnet(self.settings.user_subnet_pool, others + host_subnets)
            network_id = secrets.token_hex(32)
            record = {"name": name, "id": network_id, "created": _now(), "subnet": str(wanted),
                      "gateway": ipam.gateway_for(wanted, gateway), "bridge": "jc-" + network_id[:12],
                      "internal": bool(internal), "labels": dict(labels or {}), "mtu": self.settings.mtu,
                      "up": False}
            state["networks"][network_id] = record
            self._save(state)
            try:
                self._bring_up(state, record)
            except BaseException:
                self._bring_down(state, record)
                raise
            return self._to_network(state, record)

    def list(self, filters=None) -> list[Network]:
        """Every network: ``bridge``, ``host``, ``none``, then user networks
        by name; with docker's ``filters`` (name, label, driver), those that
        match."""
        from ..containers.filters import parse_filters

        filters = parse_filters(filters)
        state = self._load()
        records = self._records(state)
        default = [r for r in records if r["id"] == self._default_id]
        users = sorted((r for r in records if r["id"] != self._default_id), key=lambda r: r["name"])
        found = [self._to_network(state, r) for r in default] + \
            [self._to_network(state, self._find(state, n)) for n in (HOST, NONE)] + \
            [self._to_network(state, r) for r in users]
        return [network for network in found if _network_matches(network, filters)]

    def get(self, name_or_id: str) -> Network:
        """A network by name, ID or unique ID prefix."""
        state = self._load()
        return self._to_network(state, self._find(state, name_or_id))

    def remove(self, name_or_id: str) -> None:
        """``network rm``: bring the bridge and its rules down and forget the
        network. Refused while containers are attached."""
        with self._locked() as state:
            record = self._find(state, name_or_id)
            if record["name"] in PREDEFINED:
                raise UserError(f"{record['name']} is a pre-defined network and cannot be removed")
            attached = self._to_network(state, record).containers
            if attached:
                names = ", ".join(sorted(c["Name"] for c in attached.values()))
                raise Conflict(f"network {record['name']} has attached containers ({names})",
                               hint="stop them or disconnect them first")
            self._bring_down(state, record)

    def prune(self, filters=None) -> list[str]:
        """``network prune``: remove every user network without containers
        (that matches ``filters``: label); also bring the default bridge down
        while no container uses it (it comes back on next use). Returns the
        names of removed networks."""
        from ..containers.filters import parse_filters

        filters = parse_filters(filters)
        unknown = set(filters) - {"label"}
        if unknown:
            raise UserError(f"invalid filter '{min(unknown)}' for network prune", hint="use label=KEY[=VALUE]")
        removed = []
        with self._locked() as state:
            for record in list(state["networks"].values()):
                network = self._to_network(state, record)
                if not network.containers and _network_matches(network, filters):
                    self._bring_down(state, record)
                    if record["id"] != self._default_id:
                        removed.append(record["name"])
        return removed

    def _bring_up(self, state: dict, record: dict) -> None:
        subnet = ipam.parse_subnet(record["subnet"])
        links.create_bridge(record["bridge"], record["gateway"], subnet.prefixlen,
                            owner=f"jupyter-containers {self.tag}", mtu=record["mtu"])
        if self.settings.ip_forward == "enable" and not record["internal"]:
            links.write_sysctl("ipv4/ip_forward", "1")
        record["up"] = True
        state["networks"][record["id"]] = record
        self._sync_firewall(state, check_host=True)
        self._save(state)

    def _bring_down(self, state: dict, record: dict) -> None:
        # Rules first, then the bridge, then the record: a crash at any step
        # leaves the record, and running this again finishes the job.
        record["up"] = False
        self._sync_firewall(state)
        links.delete_links([record["bridge"]])
        state["networks"].pop(record["id"], None)
        state["last_ip"].pop(record["id"], None)
        self._save(state)

    def _sync_firewall(self, state: dict, check_host: bool = False) -> None:
        """Make the firewall match the state: every network that is up and
        every published port. ``check_host`` also looks for host rules that
        would drop container traffic anyway (done when a network comes up,
        kept off the attach path)."""
        networks = [firewall.BridgeNetwork(r["name"], r["bridge"], r["subnet"], r["internal"])
                    for r in state["networks"].values() if r["up"]]
        forwards = self._forwards(state, state["containers"])
        wanted = self._wanted_backend(state) if networks else None
        if state["firewall"] and state["firewall"] != wanted:
            firewall.backend(state["firewall"], self.tag).apply([], [])
        if wanted:
            backend = firewall.backend(wanted, self.tag)
            backend.apply(networks, forwards)
            if check_host:
                state["firewall_warnings"] = self._firewall_warnings(backend)
        state["firewall"] = wanted
        if not networks:
            state["firewall_warnings"] = []

    def _add_port_rules(self, state: dict, container_id: str) -> None:
        """Append one container's published ports to the rules in place (the
        start path: no removal, no wait); rewrite them all, and save the
        state that records them, when they are not as the state says."""
        if state["firewall"] and state["firewall"] == self._wanted_backend(state):
            try:
                firewall.backend(state["firewall"], self.tag).add_forwards(
                    self._forwards(state, [container_id]))
                return
            except RuntimeFailure:
                pass  # e.g. the rules were flushed by someone else
        self._sync_firewall(state)
        self._save(state)

    def _wanted_backend(self, state: dict) -> str:
        setting = self.settings.firewall_backend
        if setting == "auto":
            return state["firewall"] or firewall.choose(setting)
        return setting

    def _forwards(self, state: dict, container_ids) -> list[firewall.PortForward]:
        forwards = []
        for cid in container_ids:
            container = state["containers"][cid]
            target = self._port_endpoint(state, container)
            if target is not None:
                forwards += [firewall.PortForward(p["proto"], p["host_ip"], p["host_port"], target["ip"],
                                                  p["container_port"], cid[:12]) for p in container["ports"]]
        return forwards

    @staticmethod
    def _firewall_warnings(backend) -> list[str]:
        if backend.name != "nftables":
            return []
        return [f"the host's nftables chain {chain} drops forwarded packets by default: containers "
                f"cannot reach other networks; set Network.firewall_backend = \"iptables\" if it is "
                f"iptables' FORWARD chain, or accept the bridges' traffic there"
                for chain in firewall.foreign_forward_drops(backend.table)]

    def _warnings(self, state: dict) -> list[str]:
        found = list(state["firewall_warnings"])
        if self.settings.ip_forward == "leave" and links.read_sysctl("ipv4/ip_forward") == "0":
            found.append("net.ipv4.ip_forward is 0 on this host: containers reach the host, published "
                         "ports and each other, but not other networks; set Network.ip_forward = "
                         "\"enable\" to let them out")
        return found

    # --- containers -------------------------------------------------------

    def attach(self, container_id: str, name: str, networks=None, ports=(), extra_hosts=(),
               hostname: str | None = None) -> NetworkSettings:
        """Give a container its network before it starts.

        ``networks``: names or ``{"name", "aliases", "ip"}`` dicts, in order
        (``["bridge"]`` when None); ``"none"`` (a namespace with only ``lo``)
        and ``"host"`` (no namespace of its own) stand alone. ``ports``:
        :class:`PortSpec` or ``-p`` strings. ``extra_hosts``: ``--add-host``
        values. Creates the namespace file (``sandbox_key``), one veth pair
        per network (``eth0``, ``eth1``… inside), the addresses, the default
        route via the first non-internal network's gateway, the port rules,
        and writes ``containers/<id>/hosts`` (the container's directory must
        exist). The returned settings hold the sockets reserving the host
        ports: keep them open while the container lives.
        """
        requests = self._requests(networks)
        specs = [spec for item in ports for spec in
                 ([item] if isinstance(item, PortSpec) else parse_port_spec(item))]
        extra = hosts.parse_extra_hosts(extra_hosts)
        mode = requests[0]["name"] if requests[0]["name"] in (HOST, NONE) else DEFAULT
        warnings = []
        if specs and mode != DEFAULT:
            warnings.append(f"published ports are discarded when using the {mode} network")
            specs = []
        with self._locked() as state:
            if container_id in state["containers"]:
                raise Conflict(f"container {container_id[:12]} is already attached to its networks")
            netns_path = None if mode == HOST else str(self.netns_dir / container_id)
            record = {"name": name, "hostname": hostname or container_id[:12], "mode": mode,
                      "sandbox_key": netns_path, "extra_hosts": extra, "endpoints": [], "ports": []}
            bindings, sockets = [], []
            try:
                if mode == DEFAULT:
                    endpoints, gateway = self._allocate(state, container_id, requests)
                    record["endpoints"] = endpoints
                    if specs and gateway is None:
                        raise UserError("ports cannot be published from internal networks only",
                                        hint="also attach the container to a non-internal network")
                    bindings, sockets = self._reserve_ports(state, specs)
                    record["ports"] = [binding.to_dict() for binding in bindings]
                hosts.check_host_gateway(record["extra_hosts"], self._gateway(state, record))
                state["containers"][container_id] = record
                self._save(state)
                if netns_path:
                    self.netns_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                    netns.remove(netns_path)  # a leftover of a crash
                if mode == DEFAULT:
                    links.configure(netns_path, self._link_endpoints(state, endpoints), gateway,
                                    create=True, mtu=self.settings.mtu)
                elif mode == NONE:
                    netns.in_thread(lambda: (netns.create_and_enter(netns_path), netns.loopback_up()))
                if bindings:
                    self._add_port_rules(state, container_id)
                self._write_hosts(state, {container_id} | self._peers(state, container_id))
            except BaseException:
                for sock in sockets:
                    sock.close()
                state["containers"].pop(container_id, None)
                if netns_path:
                    netns.remove(netns_path)
                self._save(state)
                if bindings:
                    # The rules follow the state: should this fail too, the
                    # next change of any network puts them right.
                    with contextlib.suppress(Exception):
                        self._sync_firewall(state)
                        self._save(state)
                raise
            settings = self._settings(state, container_id)
            settings.sockets = sockets
            settings.warnings = warnings + (self._warnings(state) if mode == DEFAULT else [])
        return settings

    def connect(self, container_id: str, network: str, aliases=(), ip: str | None = None) -> NetworkSettings:
        """``network connect``: add a network to an attached container."""
        request = self._requests([{"name": network, "aliases": list(aliases), "ip": ip}])[0]
        with self._locked() as state:
            record = self._attached(state, container_id)
            if record["mode"] != DEFAULT or request["name"] in (HOST, NONE):
                raise Conflict(f"container {container_id[:12]} uses the {record['mode']} network: "
                               "it cannot be connected to other networks")
            old_gateway = self._gateway(state, record)
            endpoints, _ = self._allocate(state, container_id, [request], first_ifname=self._next_ifname(record))
            record["endpoints"] += endpoints
            self._save(state)
            new_gateway = self._gateway(state, record)
            try:
                links.configure(record["sandbox_key"], self._link_endpoints(state, endpoints),
                                new_gateway if new_gateway != old_gateway else None,
                                create=False, mtu=self.settings.mtu)
            except BaseException:
                record["endpoints"] = record["endpoints"][:-1]
                self._save(state)
                raise
            if record["ports"] and old_gateway is None:
                self._sync_firewall(state)
                self._save(state)
            self._write_hosts(state, {container_id} | self._peers(state, container_id))
            return self._settings(state, container_id)

    def disconnect(self, container_id: str, network: str) -> NetworkSettings:
        """``network disconnect``: remove a network from an attached
        container (its interface is deleted at once)."""
        with self._locked() as state:
            record = self._attached(state, container_id)
            target = self._find(state, network)
            endpoint = next((e for e in record["endpoints"] if e["network_id"] == target["id"]), None)
            if endpoint is None:
                raise Conflict(f"container {container_id[:12]} is not connected to network {target['name']}")
            old_peers = self._peers(state, container_id)
            old_port_endpoint = self._port_endpoint(state, record)
            links.delete_links([endpoint["host_veth"]])
            record["endpoints"].remove(endpoint)
            new_gateway = self._gateway(state, record)
            if new_gateway and old_port_endpoint is endpoint:
                links.configure(record["sandbox_key"], [], new_gateway, create=False)
            if record["ports"] and old_port_endpoint is endpoint:
                self._sync_firewall(state)
            self._save(state)
            self._write_hosts(state, {container_id} | old_peers)
            return self._settings(state, container_id)

    def detach(self, container_id: str) -> None:
        """Take a container's network down, once its processes are gone:
        unpin its namespace (the kernel then removes its veth pairs with it),
        release its addresses, remove its port rules and its name from its
        peers' hosts files. Does nothing for an unknown container, so it may
        be called again after a crash."""
        with self._locked() as state:
            netns.remove(self.netns_dir / container_id)
            peers = self._peers(state, container_id)
            record = state["containers"].pop(container_id, None)
            if record is None:
                return
            if record["ports"]:
                self._sync_firewall(state)
            self._save(state)
            self._write_hosts(state, peers)

    def sweep(self, existing_container_ids) -> list[str]:
        """Detach every container not in ``existing_container_ids`` (pass
        the containers that exist and may be running or starting, or a
        predicate on a container id, asked under the networks lock so that a
        container attached meanwhile is judged too), and remove what no
        record names: namespace files, and interfaces left on this root's
        bridges. Returns the ids of the containers detached."""
        keep = existing_container_ids if callable(existing_container_ids) else \
            set(existing_container_ids).__contains__
        with self._locked() as state:
            known_networks = {r["id"] for r in self._records(state)}
            for container in state["containers"].values():
                # containers.json is not fsynced: after a power cut it may
                # name networks removed since.
                container["endpoints"] = [e for e in container["endpoints"]
                                          if e["network_id"] in known_networks]
            stale = [cid for cid in state["containers"] if not keep(cid)]
            peers = set()
            for cid in stale:
                peers |= self._peers(state, cid)
                netns.remove(self.netns_dir / cid)
                del state["containers"][cid]
            if self.netns_dir.is_dir():
                for entry in self.netns_dir.iterdir():
                    if entry.name not in state["containers"]:
                        netns.remove(entry)
            bridges = [r["bridge"] for r in state["networks"].values() if r["up"]]
            if bridges:
                known = {e["host_veth"] for c in state["containers"].values() for e in c["endpoints"]}
                links.delete_links(sorted(links.links_on_bridges(bridges) - known))
            if bridges or state["firewall"]:
                self._sync_firewall(state)
            self._save(state)
            self._write_hosts(state, peers - set(stale))
        return stale

    def rename(self, container_id: str, name: str) -> None:
        """Follow a container's rename in its peers' hosts files."""
        with self._locked() as state:
            record = state["containers"].get(container_id)
            if record is None:
                return
            record["name"] = name
            self._save(state)
            self._write_hosts(state, {container_id} | self._peers(state, container_id))

    def attached(self, container_id: str) -> bool:
        """Whether the container holds a network record."""
        return container_id in self._load()["containers"]

    def network_settings(self, container_id: str) -> NetworkSettings | None:
        """The network settings of an attached container (None when it is
        not attached), for inspect, ps and port."""
        state = self._load()
        if container_id not in state["containers"]:
            return None
        return self._settings(state, container_id)

    def interface_counters(self, container_id: str) -> dict:
        """Network I/O of a container, as the container sees it, summed over
        its interfaces: {rx_bytes, tx_bytes, rx_packets, tx_packets}. Read
        from the host ends of its veth pairs (what one sends, the other
        receives)."""
        record = self._load()["containers"].get(container_id)
        totals = {"rx_bytes": 0, "tx_bytes": 0, "rx_packets": 0, "tx_packets": 0}
        if not record or not record["endpoints"]:
            return totals
        wanted = {e["host_veth"] for e in record["endpoints"]}
        # /proc/thread-self/net follows the calling thread's namespace;
        # /sys/class/net would follow the namespace /sys was mounted in.
        with open("/proc/thread-self/net/dev") as handle:
            for line in handle.readlines()[2:]:
                ifname, _, counters = line.partition(":")
                if ifname.strip() in wanted:
                    values = [int(v) for v in counters.split()]
                    # host end: rx bytes/packets are fields 0/1, tx are 8/9
                    totals["tx_bytes"] += values[0]
                    totals["tx_packets"] += values[1]
                    totals["rx_bytes"] += values[8]
                    totals["rx_packets"] += values[9]
        return totals

    # --- helpers ----------------------------------------------------------

    @staticmethod
    def _requests(networks) -> list[dict]:
        items = [DEFAULT] if networks is None else list(networks)
        if not items:
            raise UserError("no network given", hint="use bridge, none, host or a network's name")
        requests = []
        for item in items:
            item = {"name": item} if isinstance(item, str) else dict(item)
            request = {"name": item.get("name") or "", "aliases": list(item.get("aliases") or ()),
                       "ip": item.get("ip") or None}
            for alias in request["aliases"]:
                if not hosts.HOSTNAME.match(alias):
                    raise UserError(f"invalid network alias {alias!r}", hint="use a host name")
            if request["name"] == DEFAULT and (request["aliases"] or request["ip"]):
                raise UserError("network aliases and --ip work on user networks only, not on bridge",
                                hint="create a network with `network create` and use --network NAME")
            requests.append(request)
        names = [r["name"] for r in requests]
        if len(requests) > 1 and (HOST in names or NONE in names):
            raise UserError("the host and none networks cannot be combined with other networks")
        if len(set(names)) != len(names):
            raise UserError("a network is given twice")
        return requests

    def _network_for_attach(self, state: dict, name: str) -> dict:
        record = self._find(state, name)
        if record.get("driver"):
            raise UserError(f"the {name} network cannot be combined with other networks")
        # After a reboot the record is up but the bridge is gone;
        # /proc/sys/net follows the calling thread's namespace.
        if not record["up"] or not os.path.exists(f"/proc/sys/net/ipv4/conf/{record['bridge']}"):
            if record["id"] == self._default_id and not record["up"]:
                record["created"] = _now()
                self._check_default_subnet(state, record)
            self._bring_up(state, record)
        return record

    def _check_default_subnet(self, state: dict, record: dict) -> None:
        subnet = ipam.parse_subnet(record["subnet"])
        for taken in links.host_subnets(exclude_interfaces=[record["bridge"]]):
            if subnet.overlaps(taken):
                raise Conflict(f"the default bridge subnet {subnet} overlaps {taken}, which this host "
                               "already routes", hint="set Network.bridge_subnet to a free subnet")
        for other in state["networks"].values():
            if other["id"] != record["id"] and subnet.overlaps(ipam.parse_subnet(other["subnet"])):
                raise Conflict(f"the default bridge subnet {subnet} overlaps network {other['name']}",
                               hint="set Network.bridge_subnet to a free subnet")

    def _allocate(self, state: dict, container_id: str, requests: list[dict],
                  first_ifname: int = 0) -> tuple[list[dict], str | None]:
        endpoints = []
        for offset, request in enumerate(requests):
            record = self._network_for_attach(state, request["name"])
            if any(e["network_id"] == record["id"]
                   for e in state["containers"].get(container_id, {}).get("endpoints", [])):
                raise Conflict(f"container {container_id[:12]} is already connected to network {record['name']}")
            used = [e["ip"] for c in state["containers"].values() for e in c["endpoints"]
                    if e["network_id"] == record["id"]] + [e["ip"] for e in endpoints]
            address = ipam.allocate(ipam.parse_subnet(record["subnet"]), record["gateway"], used,
                                    state["last_ip"].get(record["id"]), request["ip"])
            state["last_ip"][record["id"]] = address
            endpoints.append({"network_id": record["id"], "endpoint_id": secrets.token_hex(32),
                              "ip": address, "mac": ipam.mac_for(address), "aliases": request["aliases"],
                              "requested_ip": request["ip"], "host_veth": "jcv" + secrets.token_hex(6),
                              "ifname": f"eth{first_ifname + offset}"})
        gateway = next((self._record_by_id(state, e["network_id"])["gateway"] for e in endpoints
                        if not self._record_by_id(state, e["network_id"])["internal"]), None)
        return endpoints, gateway

    def _record_by_id(self, state: dict, network_id: str) -> dict:
        if network_id == self._default_id and network_id not in state["networks"]:
            return self._default_record()
        return state["networks"][network_id]

    def _link_endpoints(self, state: dict, endpoints: list[dict]) -> list[links.Endpoint]:
        result = []
        for endpoint in endpoints:
            record = self._record_by_id(state, endpoint["network_id"])
            result.append(links.Endpoint(record["bridge"], endpoint["host_veth"], endpoint["ifname"],
                                         endpoint["ip"], ipam.parse_subnet(record["subnet"]).prefixlen,
                                         endpoint["mac"]))
        return result

    def _reserve_ports(self, state: dict, specs: list[PortSpec]):
        taken = [(cid, PortBinding.from_dict(p)) for cid, c in state["containers"].items() for p in c["ports"]]
        for spec in specs:
            if not spec.host_port or spec.host_port_last:
                continue
            wanted = PortBinding(spec.container_port, spec.proto, spec.host_ip, spec.host_port)
            for cid, binding in taken:
                if wanted.overlaps(binding):
                    raise Conflict(f"host port {binding.host_ip or '0.0.0.0'}:{binding.host_port}/"
                                   f"{binding.proto} is already published by container "
                                   f"{state['containers'][cid]['name'] or cid[:12]}",
                                   hint="choose another host port")
        return reserve(specs)

    def _attached(self, state: dict, container_id: str) -> dict:
        record = state["containers"].get(container_id)
        if record is None:
            raise ContainerNotFound(f"container {container_id[:12]} has no network: it is not running")
        return record

    def _gateway(self, state: dict, record: dict) -> str | None:
        endpoint = self._port_endpoint(state, record)
        return self._record_by_id(state, endpoint["network_id"])["gateway"] if endpoint else None

    def _port_endpoint(self, state: dict, record: dict) -> dict | None:
        """The endpoint on the container's first non-internal network: its
        default route and the target of its published ports."""
        for endpoint in record["endpoints"]:
            if not self._record_by_id(state, endpoint["network_id"])["internal"]:
                return endpoint
        return None

    @staticmethod
    def _next_ifname(record: dict) -> int:
        used = {int(e["ifname"][3:]) for e in record["endpoints"]}
        return next(n for n in range(len(used) + 1) if n not in used)

    def _peers(self, state: dict, container_id: str) -> set[str]:
        """Containers that share a user network with ``container_id``."""
        record = state["containers"].get(container_id)
        if record is None:
            return set()
        mine = {e["network_id"] for e in record["endpoints"]} - {self._default_id}
        return {cid for cid, c in state["containers"].items()
                if cid != container_id and mine & {e["network_id"] for e in c["endpoints"]}}

    def _hosts_content(self, state: dict, container_id: str) -> str:
        record = state["containers"][container_id]
        extra = [(name, self._gateway(state, record) if address == hosts.HOST_GATEWAY else address)
                 for name, address in record["extra_hosts"]]
        if record["mode"] == HOST:
            with open("/etc/hosts") as handle:
                return hosts.render([], [], extra, base=handle.read())
        own, peers = [], []
        for endpoint in record["endpoints"]:
            names = [record["hostname"]]
            if endpoint["network_id"] != self._default_id:
                names += [record["name"], *endpoint["aliases"]]
                for cid, other in state["containers"].items():
                    if cid == container_id:
                        continue
                    for theirs in other["endpoints"]:
                        if theirs["network_id"] == endpoint["network_id"]:
                            peers.append((theirs["ip"], _unique([other["name"], *theirs["aliases"]])))
            own.append((endpoint["ip"], _unique(names)))
        return hosts.render(own, peers, extra)

    def _write_hosts(self, state: dict, container_ids) -> None:
        for cid in container_ids:
            directory = self.layout.containers / cid
            # A peer whose container is already gone has no file to update.
            if cid in state["containers"] and directory.is_dir():
                hosts.write_in_place(directory / "hosts", self._hosts_content(state, cid))

    def _settings(self, state: dict, container_id: str) -> NetworkSettings:
        record = state["containers"][container_id]
        networks = {}
        if record["mode"] != DEFAULT:
            reference = self._find(state, record["mode"])
            networks[record["mode"]] = {"NetworkID": reference["id"], "EndpointID": "", "Gateway": "",
                                        "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "",
                                        "Aliases": None, "DNSNames": None}
        for endpoint in record["endpoints"]:
            network = self._record_by_id(state, endpoint["network_id"])
            user = endpoint["network_id"] != self._default_id
            networks[network["name"]] = {
                "IPAMConfig": {"IPv4Address": endpoint["requested_ip"]} if endpoint["requested_ip"] else None,
                "Aliases": list(endpoint["aliases"]) if user else None,
                "NetworkID": network["id"], "EndpointID": endpoint["endpoint_id"],
                "Gateway": "" if network["internal"] else network["gateway"],
                "IPAddress": endpoint["ip"], "IPPrefixLen": ipam.parse_subnet(network["subnet"]).prefixlen,
                "MacAddress": endpoint["mac"], "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "DNSNames": _unique([record["name"], *endpoint["aliases"]]) if user else None,
            }
        return NetworkSettings(record["mode"], record["sandbox_key"], networks,
                               [PortBinding.from_dict(p) for p in record["ports"]],
                               lambda: self._hosts_content(state, container_id))


def _unique(names) -> list[str]:
    seen = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
    return seen


def _network_matches(network: Network, filters: dict) -> bool:
    """docker's network filters: ``name`` (a substring), ``label``, ``driver``."""
    from ..containers.filters import labels_match

    if "name" in filters and not any(f in network.name for f in filters["name"]):
        return False
    if "label" in filters and not labels_match(network.labels or {}, filters["label"]):
        return False
    return "driver" not in filters or network.driver in filters["driver"]
