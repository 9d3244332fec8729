#!/usr/bin/env bash
# Install everything and open JupyterLab on the lesson notebooks, with the
# jupyter-containers extension (sidebar, magics) enabled.
#
# Where Docker Hub cannot be reached (or JUPYTER_CONTAINERS_OFFLINE=1), the
# lessons' images are first built locally from Debian packages (the offline
# classroom kit), so the first lesson works either way.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

if [ "${JUPYTER_CONTAINERS_OFFLINE:-}" != 1 ] && \
   python3 - <<'PY'
import socket, sys
try:
    socket.create_connection(("registry-1.docker.io", 443), timeout=3).close()
except OSError:
    sys.exit(1)
PY
then
  echo "Docker Hub is reachable: the lessons will pull their images."
else
  echo "Docker Hub is not reachable: building the lessons' images locally (offline kit)."
  python3 -m jupyter_containers lesson-images
  # Kernels inherit it: the lessons' pulls use the kit's images (Registry.offline).
  export JUPYTER_CONTAINERS_OFFLINE=1
fi

root_flag=()
[ "$(id -u)" = 0 ] && root_flag=(--allow-root)  # containers need root; so does the server then
exec jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 "${root_flag[@]}" "$@"
