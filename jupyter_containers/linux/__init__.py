"""The only place that speaks syscalls (ctypes). Imported by the runtime's
start helper in a fresh ``python -I -S`` interpreter: keep imports minimal and
never import traitlets, json or anything outside the standard library here."""
