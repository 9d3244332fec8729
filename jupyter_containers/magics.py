"""``%container`` and ``%%container``: docker's verbs in a notebook.

Loaded by ``%load_ext jupyter_containers`` (or IPython's
``InteractiveShellApp.extensions`` config). The magics parse nothing
themselves: the words go to :func:`jupyter_containers.commands.parse`
and the verbs shared with the CLI, and the results to a
:class:`~jupyter_containers.widgets.ui.NotebookUI`.
"""

from __future__ import annotations

import shlex

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Bool

from . import commands
from .errors import ContainersError, UserError

_RED, _RESET = "\x1b[31m", "\x1b[0m"
CELL_VERBS = ("run", "exec")


class CellFailed(ContainersError):
    """A ``%%container`` cell whose script exited non-zero or was interrupted."""


def _one_line(error: ContainersError) -> ContainersError:
    """Make IPython show ``error`` as one red line instead of a traceback
    (the cell still fails, so "Run All" and nbclient stop at it)."""
    error._render_traceback_ = lambda: [f"{_RED}Error:{_RESET} {error}"]
    return error


@magics_class
class ContainerMagics(Magics):
    widgets = Bool(None, allow_none=True, config=True,
                   help="Show widgets (pull progress, live logs, resources, the container list): "
                        "True, False for plain text, or None to decide by the frontend (a kernel: widgets)")

    def __init__(self, shell=None, client=None):
        super().__init__(shell)
        self._client = client

    @property
    def client(self):
        """The client the magics use (the default storage root)."""
        if self._client is None:
            from .client import Client

            self._client = Client()
        return self._client

    @line_cell_magic
    def container(self, line: str, cell: str | None = None):
        """Docker's commands, with docker's flags, in the notebook.

        Line magic — any verb of the ``jupyter-containers`` CLI::

            %container pull busybox                  # progress bars per layer
            %container run busybox echo hello        # output live; returns the exit status
            db = %container run -d --name some-mysql -e MYSQL_ROOT_PASSWORD=my-secret-pw mysql
            %container ps                            # a live table with stop/restart/remove/logs
            %container logs -f --tail 100 some-mysql # a live log viewer
            %container stats                         # live CPU, memory, pids and network
            %container exec some-mysql mysql --version
            %container stop some-mysql; %container rm some-mysql
            %container run --help                    # any verb's flags

        ``{var}`` and ``$var`` are replaced by Python values. Verbs that
        make a container, image, network or volume return it (``db.stop()``
        works); attached runs and execs return the exit status. A kernel
        interrupt (the stop button) sends SIGINT to the container, then
        kills it if it is still running after its stop timeout
        (``--stop-timeout``, else 10 s; interrupt again to kill at once).

        Cell magic — the cell body is a script, given to the interpreter on
        its stdin (any text works: quotes, ``$``, backslashes, unicode)::

            %%container run [RUN OPTIONS] IMAGE [INTERPRETER [ARGS]]
            %%container exec [EXEC OPTIONS] CONTAINER [INTERPRETER [ARGS]]

        The interpreter is ``sh`` unless named (``python``, ``bash``,
        ``node``…). ``run`` starts a fresh container, removed when the cell
        ends; ``exec`` runs in a running one. ``--mount-cwd`` (run only)
        mounts the notebook's directory at ``/work`` and starts there (the
        same as ``-v .:/work -w /work``). ``PYTHONUNBUFFERED=1`` is set so
        Python's output streams live. A non-zero exit fails the cell with
        one line.
        """
        try:
            argv = shlex.split(line)
        except ValueError as error:
            raise _one_line(UserError(f"cannot split the command line: {error}",
                                      hint="check the quotes")) from None
        from .widgets.ui import NotebookUI

        ui = NotebookUI(widgets=self.widgets, stdin_data=None if cell is None else _script(cell))
        try:
            if cell is None:
                return self._line(argv, ui)
            return self._cell(argv, ui)
        except commands.HelpShown:
            return None
        except ContainersError as error:
            raise _one_line(error) from None
        finally:
            ui.finish()

    def _line(self, argv: list[str], ui):
        if not argv:
            commands.build_parser("%container").print_help()
            return None
        args = commands.parse(argv, prog="%container")
        return _returned(args._run(self.client, args, ui))

    def _cell(self, argv: list[str], ui):
        verb = argv[0] if argv else ""
        if verb not in CELL_VERBS:
            raise UserError(f"%%container {verb} cannot run a cell" if verb else "%%container needs a verb",
                            hint="use %%container run IMAGE [INTERPRETER] or %%container exec CONTAINER [INTERPRETER]")
        args = commands.parse(argv, prog="%%container")
        if args.detach or args.tty:
            flag = "-d" if args.detach else "-t"
            raise UserError(f"{flag} cannot be used in a %%container cell",
                            hint="the cell's body is the interpreter's input and its output is shown as it runs")
        args.interactive = True
        args.command = args.command or ["sh"]
        args.env = ["PYTHONUNBUFFERED=1", *args.env]
        if verb == "run":
            args.rm = True
        result = args._run(self.client, args, ui)
        what = f"{shlex.join(args.command)} in {result.container.name}"
        if ui.interrupted:
            raise CellFailed(f"interrupted: {what} was stopped (exit status {result.exit_code})")
        if result.exit_code:
            raise CellFailed(f"{what} exited with status {result.exit_code}")
        return None


def _script(body: str) -> bytes:
    return (body if body.endswith("\n") else body + "\n").encode("utf-8")


def _returned(result):
    """What a line magic gives back: client objects (so ``db = %container
    run -d …`` works) and exit statuses; None for results the verb already
    showed in full (tables, JSON, logs), which IPython would show again."""
    from .client import Model
    from .commands.containers import RunResult

    if isinstance(result, RunResult):
        return result.exit_code
    if isinstance(result, Model):
        return result
    return None


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(ContainerMagics)


def unload_ipython_extension(ipython) -> None:
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("container", None)
