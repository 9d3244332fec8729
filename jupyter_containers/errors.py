"""The one exception hierarchy of jupyter-containers.

Every error says, in one line, what went wrong in the user's terms and what to
do about it. Frontends print ``str(error)`` (the CLI on stderr with an exit
code, the magics as one line in the cell, the server as JSON with
``http_status``); none of them shows a traceback for these.
"""

from __future__ import annotations


class ContainersError(Exception):
    """Base class. ``str()`` is the one-line message a user sees."""

    #: HTTP status the server extension answers with.
    http_status = 500
    #: Exit status of the CLI (docker exits 1 for most errors, 125 for
    #: errors of the runtime itself when running a container).
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message.strip()
        self.hint = hint.strip() if hint else None
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class UserError(ContainersError):
    """Bad input: a flag, an argument, a reference, a spec."""

    http_status = 400


class InvalidReference(UserError):
    """An image reference that does not parse."""


class NotFound(ContainersError):
    http_status = 404


class ImageNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class NetworkNotFound(NotFound):
    pass


class VolumeNotFound(NotFound):
    pass


class Conflict(ContainersError):
    """The request clashes with existing state: a name in use, an image in use."""

    http_status = 409


class RegistryError(ContainersError):
    """The registry answered with an error or could not be reached."""

    http_status = 502


class AuthenticationRequired(RegistryError):
    http_status = 401


class ManifestUnknown(RegistryError, NotFound):
    http_status = 404


class IntegrityError(ContainersError):
    """Content whose bytes do not match the digest or size it claims."""

    http_status = 502


class ImageBuildError(ContainersError):
    """A step of building an image from Debian packages failed (a mirror out
    of reach, a package apt cannot find)."""


class InvalidLayer(ContainersError):
    """A layer that cannot be unpacked: not a tar archive in a known
    compression, an entry of an unsupported type, a hardlink to nothing."""

    http_status = 422


class UnsafeLayer(InvalidLayer):
    """A layer that tries to write outside its own root."""


class HostUnsupported(ContainersError):
    """The host cannot do what was asked (a missing kernel feature, a limit
    the cgroup hierarchy does not offer)."""

    http_status = 501
    exit_code = 125


class RuntimeFailure(ContainersError):
    """The runtime itself failed to create or start a container."""

    exit_code = 125


class ContainerStartError(RuntimeFailure):
    """The container's process could not be started (e.g. the command does
    not exist in the image). docker exits 126/127 for these."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 125):
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class ContainerError(ContainersError):
    """An attached ``run`` whose command exited non-zero (docker-py's name)."""

    def __init__(self, container, exit_status: int, command, image: str, stderr: bytes = b""):
        self.container = container
        self.exit_status = exit_status
        self.command = command
        self.image = image
        self.stderr = stderr
        self.exit_code = exit_status
        cmd = " ".join(command) if isinstance(command, (list, tuple)) else (command or "")
        super().__init__(
            f"command '{cmd}' in image '{image}' returned non-zero exit status {exit_status}"
        )

    def __reduce__(self):
        return (ContainersError, (str(self),))
