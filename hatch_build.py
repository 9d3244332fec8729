"""Hatchling build hook: compiles the container monitor and init
(jupyter_containers/containers/monitor.c, init.c) into
jupyter_containers/_bin/, so that a wheel carries it ready to run
and an editable install finds it in the source tree."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class MonitorBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        # monitor.py imports only the standard library at import time: load
        # it on its own, the package's dependencies are not installed here.
        path = Path(self.root) / "jupyter_containers" / "containers" / "monitor.py"
        spec = importlib.util.spec_from_file_location("_jupyter_containers_monitor", path)
        monitor = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(monitor)
        for program in monitor.PROGRAMS:
            output = monitor.BIN / program
            try:
                monitor.compile_program(program, output)
            except FileNotFoundError:
                raise RuntimeError("building jupyter-containers needs a C compiler: "
                                   "install gcc (apt-get install gcc)") from None
            except subprocess.CalledProcessError as failure:
                raise RuntimeError(f"compiling {monitor.PROGRAMS[program][0]} failed:\n"
                                   f"{failure.stderr.decode(errors='replace')}") from None
            relative = output.relative_to(Path(self.root).resolve()).as_posix()
            build_data["artifacts"] += [relative, relative + ".sha256"]
        # The binaries make the wheel specific to this platform.
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
