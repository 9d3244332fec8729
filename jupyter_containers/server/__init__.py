"""The Jupyter server extension: a REST and websocket API under
``{base_url}containers/api/`` and a proxy to container services under
``{base_url}containers/proxy/``, both behind jupyter_server's own
authentication and authorization (resource ``containers``).

Enabled by ``jupyter-config/jupyter_server_config.d/jupyter_containers.json``,
which the wheel installs into ``etc/jupyter``; ``docs/rest-api.yaml``
describes the routes.
"""

from __future__ import annotations


def _load_jupyter_server_extension(serverapp) -> None:
    from .handlers import setup_handlers

    setup_handlers(serverapp)
