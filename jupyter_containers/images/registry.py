"""The registry client: the OCI distribution spec (Docker registry HTTP API v2).

::

    client = RegistryClient()                    # settings from the Jupyter config
    descriptor, endpoint = client.resolve(ref)   # {mediaType, digest, size}
    raw, media_type, digest = client.get_manifest(ref, descriptor["digest"], endpoint=endpoint)
    chosen = select_platform(raw, platform)      # when raw is an index (platform.py)
    client.download_blob(ref, layer["digest"], file.write, size=layer["size"], endpoint=endpoint)

Where requests go
    For a registry ``ref.domain`` the client tries the mirrors configured in
    ``Registry.mirrors[domain]`` in order, then the registry itself (Docker
    Hub's API lives at ``https://registry-1.docker.io``) unless
    ``Registry.mirrors_only``. A mirror that fails in any way (unreachable,
    404, refusing, serving bad content) is skipped at once; only the last
    endpoint is retried. ``resolve`` returns the endpoint that answered, and
    passing it back as ``endpoint=`` makes later requests go there first.
    HTTPS by default; plain HTTP for hosts in ``Registry.insecure``, for
    loopback hosts (``localhost``, 127.0.0.0/8, ``[::1]``) and for mirrors
    whose URL says ``http://``.

Authentication
    A request goes out without credentials the first time. A 401 answer
    carries a ``WWW-Authenticate`` challenge: ``Basic`` is answered with the
    stored username and password; ``Bearer realm=…,service=…,scope=…`` by
    asking the realm (the token service) for a token for the scope — with
    the stored credentials when there are some (basic auth, or an OAuth2
    refresh-token POST for an identity token), anonymously otherwise. The
    challenge is remembered per endpoint and tokens are cached per scope
    until they expire, so later requests (parallel layer downloads) carry
    their Authorization from the start. Credentials come from the
    ``credentials`` object (``get(host)``), by default the docker client
    config (:class:`~.auth.DockerConfig`).

Retries and resume
    Dropped connections, timeouts, 429 and 5xx answers are retried
    ``Registry.retries`` times with exponential backoff (``Registry.backoff``
    seconds, doubled each time, at most 10 s; a 429's ``Retry-After`` is
    honoured up to 60 s). A blob download that breaks resumes with
    ``Range: bytes=N-`` from the byte it reached; a server that ignores the
    range (200 instead of 206) has its first N bytes skipped. Blob redirects
    (to a CDN or object store) are followed without sending the registry's
    Authorization to another host.

Connections are kept alive and reused per origin; the client is thread-safe
(a connection serves one request at a time, so each downloading thread has
its own).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Optional

from .. import __version__
from .. import config as _config
from ..errors import AuthenticationRequired, ContainersError, IntegrityError, ManifestUnknown, RegistryError
from . import mediatypes
from .auth import Credentials, DockerConfig, registry_host
from .reference import DEFAULT_DOMAIN, Reference

log = logging.getLogger(__name__)

USER_AGENT = f"jupyter-containers/{__version__}"
DOCKER_HUB_API = "https://registry-1.docker.io"
CHUNK_SIZE = 256 * 1024
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_BACKOFF = 10.0
MAX_RETRY_AFTER = 60.0
_DRAIN_LIMIT = 64 * 1024
_IDLE_PER_ORIGIN = 16
_REDIRECTS = (301, 302, 303, 307, 308)
_HEAD_UNSUPPORTED = (400, 405, 501)  # some registries and proxies answer HEAD so
_DIGEST_ALGORITHMS = ("sha256", "sha512")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_AUTH_PARAM = re.compile(r'([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


@dataclass(frozen=True)
class Endpoint:
    """Where requests for one registry go: the registry itself or a mirror.

    ``url`` is ``scheme://host[:port]``; ``host`` is the name credentials
    are stored under (the registry's domain, or the mirror's host)."""

    url: str
    host: str
    mirror: bool = False

    def __str__(self) -> str:
        return f"mirror {self.url}" if self.mirror else f"registry {self.host}"


class _Transient(Exception):
    """A failure worth retrying: a dropped connection, a timeout, 429, 5xx.
    ``progressed`` says bytes arrived before it, which resets the count."""

    def __init__(self, message: str, retry_after: Optional[float] = None, progressed: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.progressed = progressed


def parse_challenge(headers: list[str]) -> Optional[tuple[str, dict]]:
    """``(scheme, params)`` of the ``WWW-Authenticate`` challenges of a 401,
    Bearer preferred over Basic; None if there is none we speak."""
    found = {}
    for header in headers:
        for part in re.split(r",\s*(?=[A-Za-z]+\s+[A-Za-z0-9_.-]+\s*=)", header.strip()):
            scheme, _, rest = part.strip().partition(" ")
            params = {key.lower(): value[1:-1].replace('\\"', '"') if value.startswith('"') else value
                      for key, value in _AUTH_PARAM.findall(rest)}
            found.setdefault(scheme.lower(), params)
    for scheme in ("bearer", "basic"):
        if scheme in found:
            return scheme, found[scheme]
    return None


def _basic(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _describe(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _media_type(response: http.client.HTTPResponse) -> str:
    return (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class _ConnectionPool:
    """Keep-alive connections by origin. A connection serves one request at
    a time; a finished response gives it back for the next request."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._tls = ssl.create_default_context()
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(self, method: str, url: str, headers: dict, body: Optional[bytes] = None) -> http.client.HTTPResponse:
        parts = urllib.parse.urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            reused = connection is not None
            if connection is None:
                connection = self._connect(*origin)
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
            except ConnectionError:
                connection.close()
                if reused:
                    continue  # the server closed an idle keep-alive connection: use a fresh one
                raise
            except BaseException:
                connection.close()
                raise
            response.pooled_connection = connection
            response.origin = origin
            response.released = False
            return response

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self._tls)
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def release(self, response: http.client.HTTPResponse) -> None:
        """Finish with a response: a small unread rest is drained so the
        connection can be reused; otherwise the connection is closed.
        Releasing (or discarding) a response again does nothing."""
        if response.released:
            return
        response.released = True
        connection = response.pooled_connection
        try:
            if not response.isclosed():
                response.read(_DRAIN_LIMIT)
        except (OSError, http.client.HTTPException):
            pass
        if response.isclosed() and not response.will_close:
            with self._lock:
                idle = self._idle.setdefault(response.origin, [])
                if len(idle) < _IDLE_PER_ORIGIN:
                    idle.append(connection)
                    return
        connection.close()

    def discard(self, response: http.client.HTTPResponse) -> None:
        """Finish with a response whose connection must not be reused."""
        if not response.released:
            response.released = True
            response.pooled_connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


class RegistryClient:
    """A client for registries speaking the OCI distribution API.

    ``settings`` is a :class:`jupyter_containers.config.Registry` (default:
    from the Jupyter config files). ``credentials`` is anything with
    ``get(host) -> Credentials | None`` (a dict will do); ``login`` and
    ``logout`` also need ``store`` and ``erase`` (default: the docker client
    config, :class:`~.auth.DockerConfig`).
    """

    def __init__(self, settings: Optional[_config.Registry] = None, credentials=None):
        self.settings = settings if settings is not None else _config.Registry(config=_config.get_config())
        self.credentials = credentials if credentials is not None else DockerConfig(self.settings.docker_config)
        self._pool = _ConnectionPool(self.settings.timeout)
        self._lock = threading.Lock()
        self._challenges: dict[str, tuple[str, dict]] = {}
        self._tokens: dict[tuple[str, Optional[str]], tuple[str, float]] = {}
        self._known_credentials: dict[str, Optional[Credentials]] = {}

    def close(self) -> None:
        """Close the idle connections."""
        self._pool.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public API -------------------------------------------------------

    def endpoints(self, domain: str) -> list[Endpoint]:
        """The endpoints tried for a registry, in order."""
        mirrors = [self._mirror_endpoint(url) for url in self.settings.mirrors.get(domain, [])]
        if mirrors and self.settings.mirrors_only:
            return mirrors
        return mirrors + [self._own_endpoint(domain)]

    def resolve(self, ref: Reference) -> tuple[dict, Endpoint]:
        """The descriptor ``{mediaType, digest, size}`` of the manifest
        ``ref`` names (its digest if it has one, else its tag) and the
        endpoint that has it. A HEAD request when the registry answers one
        fully (status, digest, type and length), else a GET."""
        reference = ref.pull_target

        def attempt(endpoint: Endpoint) -> tuple[dict, Endpoint]:
            response = self._send(endpoint, "HEAD", self._manifest_path(ref, reference), self._scope(ref),
                                  {"Accept": mediatypes.MANIFEST_ACCEPT})
            if response.status in _HEAD_UNSUPPORTED:
                self._pool.release(response)
                return self._resolve_by_get(endpoint, ref, reference)
            self._raise_for_status(endpoint, response, lambda: self._manifest_unknown(ref, endpoint),
                                   self._scope(ref))
            digest = response.getheader("Docker-Content-Digest") or ""
            media_type = _media_type(response)
            length = response.getheader("Content-Length") or ""
            self._pool.release(response)
            if ref.digest and digest and digest != ref.digest:
                raise IntegrityError(f"{endpoint} answered digest {digest} when asked for {ref.digest}",
                                     hint="the registry is misbehaving; try another mirror or report it")
            if digest and media_type in mediatypes.MANIFESTS and length.isdigit():
                return {"mediaType": media_type, "digest": digest, "size": int(length)}, endpoint
            return self._resolve_by_get(endpoint, ref, reference)

        return self._attempts(self.endpoints(ref.domain), attempt)

    def _resolve_by_get(self, endpoint: Endpoint, ref: Reference, reference: str) -> tuple[dict, Endpoint]:
        raw, media_type, digest = self._fetch_manifest(endpoint, ref, reference)
        return {"mediaType": media_type, "digest": digest, "size": len(raw)}, endpoint

    def get_manifest(self, ref: Reference, reference: Optional[str] = None, *,
                     endpoint: Optional[Endpoint] = None) -> tuple[bytes, str, str]:
        """``(raw bytes, media type, digest)`` of a manifest or index.

        ``reference`` is a tag or digest (default: ``ref.pull_target``). When
        it is a digest the bytes are verified against it; otherwise the
        digest is computed from the bytes (and must agree with the
        registry's ``Docker-Content-Digest`` when it sends one)."""
        reference = reference or ref.pull_target
        return self._attempts(self._endpoints(ref.domain, endpoint),
                              lambda each: self._fetch_manifest(each, ref, reference))

    def download_blob(self, ref: Reference, digest: str, write: Callable[[bytes], object], offset: int = 0,
                      progress: Optional[Callable[[int], object]] = None, *, size: Optional[int] = None,
                      endpoint: Optional[Endpoint] = None) -> int:
        """Stream blob ``digest`` of ``ref``'s repository to ``write(chunk)``,
        starting at byte ``offset`` (what the caller already has). Calls
        ``progress(bytes_so_far)`` after each chunk; returns the blob's length.

        Checking the digest is the caller's job (it hashes what it writes);
        with ``size`` a server sending more bytes than that is refused before
        the excess is written, and a short answer is resumed. An exception
        from ``write`` or ``progress`` stops the download at once."""
        if size is not None and offset >= size:
            if offset > size:
                raise ValueError(f"offset {offset} is beyond the blob's size {size}")
            return offset
        received = offset
        path = f"/v2/{ref.path}/blobs/{digest}"

        def attempt(endpoint: Endpoint) -> int:
            nonlocal received
            start = received
            response = self._open_blob(endpoint, ref, path, {"Range": f"bytes={received}-"} if received else {})
            try:
                skip, total = self._blob_window(endpoint, ref, digest, response, received, size)
                if total is not None and received >= total:
                    self._pool.release(response)
                    return received
                while True:
                    try:
                        chunk = response.read1(CHUNK_SIZE)
                    except (OSError, http.client.HTTPException) as error:
                        raise _Transient(f"the connection to {endpoint.url} dropped after {received} bytes "
                                         f"of {digest}: {_describe(error)}", progressed=received > start) from None
                    if not chunk:
                        break
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                        if not chunk:
                            continue
                    if size is not None and received + len(chunk) > size:
                        raise IntegrityError(
                            f"blob {digest} from {endpoint} is larger than the {size} bytes the image says",
                            hint="the registry serves different content; refusing it")
                    write(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received)
                expected = size if size is not None else total
                if expected is not None and received < expected:
                    raise _Transient(f"the connection to {endpoint.url} dropped after {received} of {expected} "
                                     f"bytes of {digest}", progressed=received > start)
            except BaseException:
                self._pool.discard(response)
                raise
            self._pool.release(response)
            return received

        return self._attempts(self._endpoints(ref.domain, endpoint), attempt)

    def login(self, host: str, username: str, password: str) -> None:
        """Check the credentials against ``host``'s ``/v2/`` (answering its
        challenge) and store them. Raises AuthenticationRequired when the
        registry refuses them; nothing is stored then."""
        host = registry_host(host)
        endpoint = self._own_endpoint(host)
        credentials = Credentials(username, password)
        self._attempts([endpoint], lambda each: self._check_login(each, credentials))
        self.credentials.store(host, credentials)
        self._forget(host)

    def logout(self, host: str) -> bool:
        """Forget the stored credentials of ``host``; False if there were none."""
        host = registry_host(host)
        removed = self.credentials.erase(host)
        self._forget(host)
        return removed

    # -- endpoints ----------------------------------------------------------

    def _own_endpoint(self, domain: str) -> Endpoint:
        if domain == DEFAULT_DOMAIN:
            return Endpoint(DOCKER_HUB_API, DEFAULT_DOMAIN)
        return Endpoint(f"{self._scheme(domain)}://{domain}", domain)

    def _endpoints(self, domain: str, preferred: Optional[Endpoint]) -> list[Endpoint]:
        endpoints = self.endpoints(domain)
        if preferred is None:
            return endpoints
        return [preferred] + [each for each in endpoints if each != preferred]

    def _mirror_endpoint(self, url: str) -> Endpoint:
        text = url.strip()
        if "://" not in text:
            text = f"{self._scheme(text.rstrip('/'))}://{text}"
        parts = urllib.parse.urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
                or parts.query or parts.fragment:
            raise RegistryError(f"Registry.mirrors: '{url}' is not a registry URL",
                                hint="write scheme://host[:port], for example http://127.0.0.1:5000")
        return Endpoint(f"{parts.scheme}://{parts.netloc}", parts.netloc.lower(), mirror=True)

    def _scheme(self, netloc: str) -> str:
        netloc = netloc.lower()
        hostname = urllib.parse.urlsplit(f"//{netloc}").hostname or netloc
        insecure = {entry.strip().lower() for entry in self.settings.insecure}
        if netloc in insecure or hostname in insecure or hostname == "localhost":
            return "http"
        try:
            return "http" if ipaddress.ip_address(hostname).is_loopback else "https"
        except ValueError:
            return "https"

    # -- requests -----------------------------------------------------------

    @staticmethod
    def _scope(ref: Reference) -> str:
        return f"repository:{ref.path}:pull"

    @staticmethod
    def _manifest_path(ref: Reference, reference: str) -> str:
        return f"/v2/{ref.path}/manifests/{reference}"

    def _open(self, method: str, url: str, headers: dict, body: Optional[bytes] = None) -> http.client.HTTPResponse:
        headers = {"User-Agent": USER_AGENT, **headers}
        netloc = urllib.parse.urlsplit(url).netloc
        try:
            return self._pool.request(method, url, headers, body)
        except ssl.SSLCertVerificationError as error:
            raise RegistryError(f"the TLS certificate of {netloc} is not trusted: {error.verify_message}",
                                hint="install its CA certificate, or list the host in Registry.insecure "
                                     "if it serves plain HTTP") from None
        except ssl.SSLError as error:
            raise RegistryError(f"TLS with {netloc} failed ({error.reason or error})",
                                hint="if it is a plain-HTTP registry, list it in Registry.insecure") from None
        except socket.gaierror as error:
            raise RegistryError(f"cannot resolve the registry host {netloc}: {error.strerror}",
                                hint="check the name and the network") from None
        except (OSError, http.client.HTTPException) as error:
            raise _Transient(f"cannot reach {netloc}: {_describe(error)}") from None

    def _send(self, endpoint: Endpoint, method: str, path: str, scope: Optional[str],
              headers: dict) -> http.client.HTTPResponse:
        """One request, answering a 401 challenge once."""
        url = endpoint.url + path
        authorization = self._authorization(endpoint, scope)
        response = self._open(method, url, {**headers, "Authorization": authorization} if authorization else headers)
        if response.status != 401:
            return response
        challenge = parse_challenge(response.headers.get_all("WWW-Authenticate") or [])
        self._pool.release(response)
        if challenge is None:
            raise self._denied(endpoint, scope)
        with self._lock:
            self._challenges[endpoint.host] = challenge
            self._tokens.pop((endpoint.host, scope), None)
        retry_authorization = self._authorization(endpoint, scope)
        if retry_authorization is None or retry_authorization == authorization:
            raise self._denied(endpoint, scope)
        response = self._open(method, url, {**headers, "Authorization": retry_authorization})
        if response.status == 401:
            self._pool.release(response)
            raise self._denied(endpoint, scope)
        return response

    def _raise_for_status(self, endpoint: Endpoint, response: http.client.HTTPResponse,
                          not_found: Callable[[], ContainersError], scope: Optional[str] = None) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        detail = self._error_detail(response)
        if status == 404:
            raise not_found()
        if status in (401, 403):
            raise self._denied(endpoint, scope)
        if status in (408, 429) or (status >= 500 and status not in (501, 505)):
            raise _Transient(f"{endpoint} answered {status} {response.reason}{detail}",
                             retry_after=_retry_after(response.getheader("Retry-After")))
        raise RegistryError(f"{endpoint} answered {status} {response.reason}{detail}",
                            hint="check the image name and the registry's documentation")

    def _error_detail(self, response: http.client.HTTPResponse) -> str:
        """The registry's own explanation (``{"errors": [{code, message}]}``),
        as a suffix for a message; releases the response."""
        try:
            body = response.read(_DRAIN_LIMIT)
        except (OSError, http.client.HTTPException):
            body = b""
        self._pool.release(response)
        try:
            first = json.loads(body)["errors"][0]
            words = [str(first[key]) for key in ("code", "message") if first.get(key)]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return ""
        return f" ({': '.join(words)})" if words else ""

    def _attempts(self, endpoints: list[Endpoint], attempt: Callable[[Endpoint], object]):
        """Run ``attempt`` on each endpoint until one succeeds. Every endpoint
        but the last is given up on its first failure; the last one is
        retried on transient failures with backoff."""
        for position, endpoint in enumerate(endpoints):
            final = position == len(endpoints) - 1
            failures = 0
            while True:
                try:
                    return attempt(endpoint)
                except (_Transient, RegistryError, IntegrityError) as error:
                    if not final:
                        log.info("%s failed (%s); trying %s", endpoint, error, endpoints[position + 1])
                        break
                    if not isinstance(error, _Transient):
                        raise
                    failures = 1 if error.progressed else failures + 1
                    if failures > self.settings.retries:
                        retries = self.settings.retries
                        plural = "retry" if retries == 1 else "retries"
                        raise RegistryError(f"{error} (gave up after {retries} {plural})",
                                            hint="check that the registry is up and reachable, "
                                                 "or try again later") from None
                    delay = error.retry_after
                    if delay is None:
                        delay = min(self.settings.backoff * 2 ** (failures - 1), MAX_BACKOFF)
                    log.info("%s; retrying in %.1f s", error, delay)
                    time.sleep(delay)

    # -- authentication -----------------------------------------------------

    def _credentials_for(self, host: str) -> Optional[Credentials]:
        with self._lock:
            if host in self._known_credentials:
                return self._known_credentials[host]
        found = self.credentials.get(host)
        with self._lock:
            self._known_credentials[host] = found
        return found

    def _forget(self, host: str) -> None:
        with self._lock:
            self._known_credentials.pop(host, None)
            for key in [key for key in self._tokens if key[0] == host]:
                del self._tokens[key]

    def _authorization(self, endpoint: Endpoint, scope: Optional[str]) -> Optional[str]:
        """The Authorization header for a request, from the endpoint's known
        challenge: basic credentials, or a (cached or new) bearer token."""
        with self._lock:
            challenge = self._challenges.get(endpoint.host)
            cached = self._tokens.get((endpoint.host, scope))
        if challenge is None:
            return None
        scheme, params = challenge
        credentials = self._credentials_for(endpoint.host)
        if scheme == "basic":
            return _basic(credentials) if credentials and credentials.username else None
        if cached and cached[1] > time.monotonic():
            return cached[0]
        token, lifetime = self._fetch_token(endpoint, params, scope, credentials)
        header = f"Bearer {token}"
        with self._lock:
            self._tokens[(endpoint.host, scope)] = (header, time.monotonic() + lifetime * 0.9)
        return header

    def _fetch_token(self, endpoint: Endpoint, params: dict, scope: Optional[str],
                     credentials: Optional[Credentials]) -> tuple[str, float]:
        """Ask the challenge's realm for a token: ``(token, seconds valid)``."""
        realm = params.get("realm", "")
        if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError(f"{endpoint} asked for a token from '{realm}', which is not a URL",
                                hint="the registry's auth configuration is broken; tell its operator")
        query = {key: value for key, value in (("service", params.get("service")), ("scope", scope)) if value}
        if credentials and credentials.identity_token:
            form = {**query, "grant_type": "refresh_token", "refresh_token": credentials.identity_token,
                    "client_id": "jupyter-containers"}
            response = self._open("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                                  urllib.parse.urlencode(form).encode())
        else:
            headers = {}
            if credentials and credentials.username:
                query["account"] = credentials.username
                headers["Authorization"] = _basic(credentials)
            separator = "&" if "?" in realm else "?"
            url = realm + (separator + urllib.parse.urlencode(query) if query else "")
            response = self._open("GET", url, headers)
        if response.status in (401, 403):
            self._pool.release(response)
            if credentials:
                raise AuthenticationRequired(
                    f"{endpoint.host} refused the stored credentials"
                    f"{' of ' + credentials.username if credentials.username else ''}",
                    hint=f"log in again with `jupyter-containers login {endpoint.host}`")
            raise self._denied(endpoint, scope)
        self._raise_for_status(endpoint, response, lambda: RegistryError(
            f"the token service {realm} of {endpoint} does not exist", hint="tell the registry's operator"))
        try:
            body = response.read(MAX_MANIFEST_SIZE)
        except (OSError, http.client.HTTPException) as error:
            self._pool.discard(response)
            raise _Transient(f"the token service {realm} dropped the connection: {_describe(error)}") from None
        self._pool.release(response)
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
            lifetime = float(answer.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service {realm} of {endpoint} answered without a token",
                                hint="tell the registry's operator")
        return token, lifetime

    def _denied(self, endpoint: Endpoint, scope: Optional[str]) -> AuthenticationRequired:
        credentials = self._credentials_for(endpoint.host)
        what = f"pull access denied for {scope.split(':')[1]}" if scope else f"{endpoint} requires authentication"
        reason = " (the repository does not exist or needs a login)" if scope else ""
        if credentials:
            return AuthenticationRequired(
                f"{what} on {endpoint.host} with the stored credentials{reason}",
                hint=f"check the name and your permissions, or log in again with "
                     f"`jupyter-containers login {endpoint.host}`")
        return AuthenticationRequired(
            f"{what} on {endpoint.host}{reason}",
            hint=f"log in with `jupyter-containers login {endpoint.host}`")

    def _check_login(self, endpoint: Endpoint, credentials: Credentials) -> None:
        url = endpoint.url + "/v2/"
        def not_a_registry():
            return RegistryError(f"{endpoint.url} is not a registry (no /v2/ API)", hint="check the host name")

        response = self._open("GET", url, {})
        challenge = parse_challenge(response.headers.get_all("WWW-Authenticate") or [])
        if response.status != 401 or challenge is None:
            self._raise_for_status(endpoint, response, not_a_registry)
            self._pool.release(response)
            return  # an open registry: nothing to check against
        self._pool.release(response)
        scheme, params = challenge
        if scheme == "bearer":
            authorization = "Bearer " + self._fetch_token(endpoint, params, None, credentials)[0]
        else:
            authorization = _basic(credentials)
        response = self._open("GET", url, {"Authorization": authorization})
        if response.status in (401, 403):
            self._pool.release(response)
            raise AuthenticationRequired(f"login to {endpoint.host} failed: incorrect username or password",
                                         hint="check them and try again")
        self._raise_for_status(endpoint, response, not_a_registry)
        self._pool.release(response)

    # -- manifests and blobs ------------------------------------------------

    def _manifest_unknown(self, ref: Reference, endpoint: Endpoint) -> ManifestUnknown:
        where = ref.domain + (f" (mirror {endpoint.url})" if endpoint.mirror else "")
        return ManifestUnknown(f"image '{ref.familiar}' not found in {where}",
                               hint="check the name and " + ("digest" if ref.digest else "tag"))

    def _fetch_manifest(self, endpoint: Endpoint, ref: Reference, reference: str) -> tuple[bytes, str, str]:
        response = self._send(endpoint, "GET", self._manifest_path(ref, reference), self._scope(ref),
                              {"Accept": mediatypes.MANIFEST_ACCEPT})
        self._raise_for_status(endpoint, response, lambda: self._manifest_unknown(ref, endpoint), self._scope(ref))
        try:
            raw = response.read(MAX_MANIFEST_SIZE + 1)
        except (OSError, http.client.HTTPException) as error:
            self._pool.discard(response)
            raise _Transient(f"the connection to {endpoint.url} dropped while reading a manifest: "
                             f"{_describe(error)}") from None
        header_type = _media_type(response)
        header_digest = response.getheader("Docker-Content-Digest") or ""
        self._pool.release(response)
        if len(raw) > MAX_MANIFEST_SIZE:
            raise RegistryError(f"the manifest of '{ref.familiar}' on {endpoint} is larger than "
                                f"{MAX_MANIFEST_SIZE >> 20} MiB", hint="this is not a usable image")
        algorithm, _, _hex = reference.partition(":")
        if _hex and algorithm in _DIGEST_ALGORITHMS:
            digest = digest_of(raw, algorithm)
            if digest != reference:
                raise IntegrityError(f"the manifest {reference} from {endpoint} does not match its digest "
                                     f"(its bytes hash to {digest})", hint="the registry or a proxy altered it")
        else:
            digest = digest_of(raw)
            if header_digest.startswith("sha256:") and header_digest != digest:
                raise IntegrityError(f"the manifest of '{ref.familiar}' from {endpoint} hashes to {digest}, "
                                     f"not to the {header_digest} the registry announced",
                                     hint="the registry or a proxy altered it")
        try:
            document = json.loads(raw)
            if not isinstance(document, dict):
                raise ValueError
        except ValueError:
            raise RegistryError(f"the manifest of '{ref.familiar}' on {endpoint} is not a JSON object",
                                hint="this is not a usable image") from None
        # What the document says (or its shape) is covered by the digest; the
        # Content-Type header is not, so it only appears in the error below.
        media_type = mediatypes.sniff_manifest_type(document)
        if media_type in mediatypes.SCHEMA1_MANIFESTS:
            raise RegistryError(f"'{ref.familiar}' on {endpoint} is a Docker schema 1 image, which is no "
                                f"longer supported", hint="push it again with a current docker or podman")
        if media_type not in mediatypes.MANIFESTS:
            raise RegistryError(f"'{ref.familiar}' on {endpoint} has a manifest of unsupported type "
                                f"'{media_type or header_type}'", hint="this is not a container image")
        return raw, media_type, digest

    def _open_blob(self, endpoint: Endpoint, ref: Reference, path: str, headers: dict) -> http.client.HTTPResponse:
        """GET a blob, following redirects; the registry's Authorization goes
        only to the registry's own origin."""
        scope = self._scope(ref)
        response = self._send(endpoint, "GET", path, scope, headers)
        url = endpoint.url + path
        for _ in range(MAX_REDIRECTS):
            if response.status not in _REDIRECTS:
                return response
            location = response.getheader("Location")
            self._pool.release(response)
            if not location:
                raise RegistryError(f"{endpoint} redirected a blob request to nowhere",
                                    hint="the registry is misconfigured; tell its operator")
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url)[:2] == urllib.parse.urlsplit(endpoint.url)[:2]:
                authorization = self._authorization(endpoint, scope)
                response = self._open("GET", url, {**headers, "Authorization": authorization}
                                      if authorization else headers)
            else:
                response = self._open("GET", url, headers)
        self._pool.release(response)
        raise RegistryError(f"{endpoint} redirected a blob request more than {MAX_REDIRECTS} times",
                            hint="the registry is misconfigured; tell its operator")

    def _blob_window(self, endpoint: Endpoint, ref: Reference, digest: str, response: http.client.HTTPResponse,
                     received: int, size: Optional[int]) -> tuple[int, Optional[int]]:
        """How many leading bytes of the answer to skip, and the blob's total
        length when the answer says it."""
        status = response.status
        if status == 416 and size is None:
            return 0, received  # asked to resume at the end: nothing is left
        if status in (401, 403) and response.origin != urllib.parse.urlsplit(endpoint.url)[:2]:
            detail = self._error_detail(response)
            raise _Transient(f"the redirect target of blob {digest} refused it ({status}{detail})")
        self._raise_for_status(endpoint, response, lambda: RegistryError(
            f"blob {digest} of {ref.repository} is missing on {endpoint}",
            hint="the image is incomplete there; push it again"), self._scope(ref))
        length = response.getheader("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            match = _CONTENT_RANGE.match(response.getheader("Content-Range") or "")
            if not match or int(match.group(1)) > received:
                raise RegistryError(f"{endpoint} answered the range request for {digest} with "
                                    f"'{response.getheader('Content-Range')}'",
                                    hint="the registry is misbehaving; try again or report it")
            start = int(match.group(1))
            total = int(match.group(3)) if match.group(3) != "*" else int(match.group(2)) + 1
        else:
            start, total = 0, length
        if size is not None and total is not None and total != size:
            raise IntegrityError(f"blob {digest} from {endpoint} is {total} bytes, not the {size} the image says",
                                 hint="the registry serves different content; refusing it")
        return received - start, total
