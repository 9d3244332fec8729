"""Registry credentials, kept where docker keeps them.

:class:`DockerConfig` reads and writes docker's client config
(``~/.docker/config.json``, or ``$DOCKER_CONFIG/config.json``, or
``Registry.docker_config``), so ``docker login`` and ``jupyter-containers
login`` share their credentials:

- ``auths``: ``{"registry.example.com": {"auth": base64("user:password")}}``
  (or ``username``/``password`` fields, and ``identitytoken``, an OAuth2
  refresh token). Docker Hub's key is ``https://index.docker.io/v1/``; keys
  written with a scheme or a path are matched by their host, as docker does.
- ``credHelpers`` (per registry) and ``credsStore`` (for all the others) name a
  helper program ``docker-credential-<name>`` spoken to through docker's
  protocol: the action (``get``, ``store``, ``erase``) as argument, the server
  URL or a ``{"ServerURL", "Username", "Secret"}`` JSON document on stdin, the
  JSON answer on stdout. A ``Username`` of ``<token>`` means the secret is an
  identity token.

Writes replace the file atomically with mode 0600 and keep every other key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import urllib.parse
from dataclasses import dataclass
from typing import Optional

from .. import config as _config
from ..errors import UserError
from ..storage import write_atomic
from .reference import DEFAULT_DOMAIN, LEGACY_DOMAINS

#: The key docker uses for Docker Hub in ``auths`` and with helpers.
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_TOKEN_USERNAME = "<token>"
_HELPER_TIMEOUT = 60


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity token (an OAuth2 refresh token
    handed out by a token service)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __repr__(self) -> str:  # never show secrets in logs or tracebacks
        kind = "identity token" if self.identity_token else "password"
        return f"Credentials(username={self.username!r}, {kind}=***)"


def registry_host(text: str) -> str:
    """The registry a login, logout or config key is about: ``docker.io`` for
    every spelling of Docker Hub, else ``host[:port]`` without scheme or path."""
    text = text.strip()
    if "://" in text:
        text = urllib.parse.urlsplit(text).netloc
    host = text.split("/", 1)[0].lower()
    if host in LEGACY_DOMAINS or host == DEFAULT_DOMAIN:
        return DEFAULT_DOMAIN
    return host


def config_key(host: str) -> str:
    """The key docker writes for ``host`` in ``auths`` and gives helpers."""
    host = registry_host(host)
    return DOCKER_HUB_KEY if host == DEFAULT_DOMAIN else host


class DockerConfig:
    """Credentials in a docker client config file. Every method re-reads the
    file, so changes by ``docker login`` show at once."""

    def __init__(self, path: Optional[str] = None):
        if path is None:
            path = _config.Registry(config=_config.get_config()).docker_config
        self.path = os.path.expanduser(path)

    def __repr__(self) -> str:
        return f"DockerConfig({self.path!r})"

    def get(self, host: str) -> Optional[Credentials]:
        """The credentials for a registry host, or None."""
        host = registry_host(host)
        data = self._read()
        helper = self._helper_for(host, data)
        if helper:
            found = self._helper_get(helper, config_key(host))
            if found:
                return found
        for key in self._matching_keys(data.get("auths"), host):
            found = self._parse_entry(data["auths"][key], key)
            if found:
                return found
        return None

    def store(self, host: str, credentials: Credentials) -> None:
        """Save credentials for ``host``: in its helper when one is
        configured (``auths`` then only records the host, as docker does),
        else in ``auths``."""
        host = registry_host(host)
        data = self._read()
        auths = self._auths(data)
        for key in self._matching_keys(auths, host):
            del auths[key]
        key = config_key(host)
        helper = self._helper_for(host, data)
        if helper:
            username, secret = ((_TOKEN_USERNAME, credentials.identity_token) if credentials.identity_token
                                else (credentials.username, credentials.password))
            document = json.dumps({"ServerURL": key, "Username": username, "Secret": secret})
            self._run_helper(helper, "store", document)
            auths[key] = {}
        else:
            entry = {}
            if credentials.username or credentials.password:
                entry["auth"] = base64.b64encode(
                    f"{credentials.username}:{credentials.password}".encode()).decode()
            if credentials.identity_token:
                entry["identitytoken"] = credentials.identity_token
            auths[key] = entry
        self._write(data)

    def erase(self, host: str) -> bool:
        """Forget the credentials for ``host``; False if there were none."""
        host = registry_host(host)
        existed = self.get(host) is not None
        data = self._read()
        helper = self._helper_for(host, data)
        if helper and existed:
            self._run_helper(helper, "erase", config_key(host))
        keys = self._matching_keys(data.get("auths"), host)
        if keys:
            for key in keys:
                del data["auths"][key]
            self._write(data)
        return existed

    # -- the file ---------------------------------------------------------

    def _read(self) -> dict:
        try:
            with open(self.path, "rb") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read the docker config {self.path}: {error}",
                            hint="fix the file or move it away") from None
        if not isinstance(data, dict):
            raise UserError(f"the docker config {self.path} is not a JSON object",
                            hint="fix the file or move it away")
        return data

    def _write(self, data: dict) -> None:
        path = os.path.realpath(self.path)  # a symlinked config stays a symlink
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomic(path, json.dumps(data, indent="\t").encode() + b"\n", mode=0o600)

    def _auths(self, data: dict) -> dict:
        auths = data.get("auths")
        if not isinstance(auths, dict):
            auths = data["auths"] = {}
        return auths

    @staticmethod
    def _matching_keys(auths, host: str) -> list[str]:
        if not isinstance(auths, dict):
            return []
        return [key for key in auths if registry_host(key) == host]

    def _parse_entry(self, entry, key: str) -> Optional[Credentials]:
        if not isinstance(entry, dict):
            return None
        username, password = entry.get("username") or "", entry.get("password") or ""
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, TypeError):
                raise UserError(f"the 'auth' entry for {key} in {self.path} is not base64 of user:password",
                                hint=f"log in again with `jupyter-containers login {registry_host(key)}`") from None
            username, _, password = decoded.partition(":")
        token = entry.get("identitytoken") or ""
        if not (username or password or token):
            return None
        return Credentials(username, password, token)

    # -- helpers ----------------------------------------------------------

    @staticmethod
    def _helper_for(host: str, data: dict) -> Optional[str]:
        per_host = data.get("credHelpers")
        if isinstance(per_host, dict):
            for key, helper in per_host.items():
                if registry_host(key) == host and helper:
                    return helper
        store = data.get("credsStore")
        return store if isinstance(store, str) and store else None

    def _helper_get(self, helper: str, key: str) -> Optional[Credentials]:
        output = self._run_helper(helper, "get", key, missing_ok=True)
        if output is None:
            return None
        try:
            answer = json.loads(output)
            username, secret = answer.get("Username") or "", answer.get("Secret") or ""
        except (ValueError, AttributeError):
            raise UserError(f"credential helper docker-credential-{helper} answered something that is not JSON",
                            hint="check the helper works: echo HOST | docker-credential-"
                                 f"{helper} get") from None
        if username == _TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        return Credentials(username, secret) if (username or secret) else None

    def _run_helper(self, helper: str, action: str, stdin: str, *, missing_ok: bool = False) -> Optional[str]:
        program = f"docker-credential-{helper}"
        try:
            result = subprocess.run([program, action], input=stdin.encode(), capture_output=True,
                                    timeout=_HELPER_TIMEOUT, check=False)
        except FileNotFoundError:
            raise UserError(f"credential helper {program} (named in {self.path}) is not installed",
                            hint="install it, or remove credsStore/credHelpers from that file") from None
        except subprocess.TimeoutExpired:
            raise UserError(f"credential helper {program} did not answer '{action}' "
                            f"within {_HELPER_TIMEOUT} s", hint="check it works from a terminal") from None
        output = result.stdout.decode(errors="replace").strip()
        if result.returncode != 0:
            if missing_ok and "credentials not found" in output.lower():
                return None
            message = output or result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
            raise UserError(f"credential helper {program} {action} failed: {message.splitlines()[0]}",
                            hint="check it works from a terminal")
        return output
