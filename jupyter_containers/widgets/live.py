"""What the widgets with background updates share: a worker thread that runs
while the widget is open and shown, and a text/plain fallback."""

from __future__ import annotations

import threading


class TextFallback:
    """Mixin giving a widget a readable text/plain form, for frontends with
    no widget support (terminal IPython, nbconvert to text)."""

    def text(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = self.text()
        return bundle


class LiveWidget(TextFallback):
    """Mixin for an ipywidgets container whose ``_run(stop)`` loop updates it
    in a background thread.

    The loop runs from creation until the widget is closed or the loop
    returns (its container is gone). In a frontend that counts views
    (``_view_count``: JupyterLab, Notebook 7), it also stops when the last
    view goes away — the output was cleared or the cell re-run — and starts
    again when a view comes back (the notebook reopened). ``_run`` must
    return soon after ``stop`` is set.
    """

    _thread: threading.Thread | None = None
    _stop_event: threading.Event | None = None

    def _start_live(self) -> None:
        """Call at the end of ``__init__``: starts the updates."""
        self._live_lock = threading.Lock()
        self._view_count = 0
        self.observe(self._views_changed, "_view_count")
        self.start()

    def start(self) -> None:
        """(Re)start background updates; no-op while they run."""
        with self._live_lock:
            if self.running:
                return
            self._stop_event = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop_event,), daemon=True,
                                            name=f"{type(self).__name__}-updates")
            self._thread.start()

    def stop(self) -> None:
        """Stop background updates (the widget keeps what it shows)."""
        if self._stop_event is not None:
            self._stop_event.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop_event.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the background updates have ended."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _views_changed(self, change) -> None:
        if not change["new"]:
            self.stop()
        elif not change["old"] and self._restartable():
            self.start()

    def _restartable(self) -> bool:
        """Whether updates should resume when a view comes back."""
        return True

    def _run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()
        super().close()
