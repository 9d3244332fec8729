"""Container networking: bridge networks, veth pairs, address management,
firewall rules, published ports and name resolution.

The runtime uses :class:`NetworkManager`; see docs/architecture.md
("Networking"). Importing this package does not import pyroute2 (about
0.1 s): that happens on the first operation that needs netlink.
"""

from .manager import NetworkManager, Network, NetworkSettings
from .ports import PortBinding, PortSpec, exposed_port_specs, parse_port_spec, parse_port_specs

__all__ = ["NetworkManager", "Network", "NetworkSettings", "PortBinding", "PortSpec",
           "exposed_port_specs", "parse_port_spec", "parse_port_specs"]
