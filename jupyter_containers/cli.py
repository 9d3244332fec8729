"""The ``jupyter-containers`` command (also ``jupyter containers``): docker's
verbs and flags, through the same parsers as the magics."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from . import commands
    from .commands.ui import TerminalUI
    from .errors import ContainersError

    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "jupyter-containers"
    ui = TerminalUI()
    if not argv:
        commands.build_parser(prog).print_help()
        return 0
    try:
        args = commands.parse(argv, prog)
        from .client import Client

        result = args._run(Client(), args, ui)
    except commands.HelpShown:
        return 0
    except ContainersError as error:
        sys.stderr.write(f"Error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return _exit_code(result)


def _exit_code(result) -> int:
    """An attached run or exec passes its command's exit code on; any other
    verb that returned succeeded (``wait`` prints codes and exits 0, as
    docker's)."""
    from .commands.containers import RunResult

    if isinstance(result, RunResult):
        code = int(result)
        return code if 0 <= code < 256 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
