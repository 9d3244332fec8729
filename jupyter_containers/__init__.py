"""jupyter-containers: Docker-style containers inside Jupyter, with no daemon.

    %load_ext jupyter_containers
    %container run --name some-mysql -e MYSQL_ROOT_PASSWORD=my-secret-pw -d -p 3306:3306 mysql

This module imports nothing heavy at import time: the runtime's start path
imports ``jupyter_containers.linux`` in a fresh interpreter and must stay fast.
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(name)


def load_ipython_extension(ipython):
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points():
    return [{"module": "jupyter_containers.server"}]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-containers"}]
