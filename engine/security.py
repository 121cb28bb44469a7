"""Who may talk to the engine: the bind policy and CurveZMQ authentication.

The engine runs arbitrary-size compute for whoever connects, so by default it listens only
where nobody else can reach it: loopback TCP or an ipc:// socket file readable by its user
alone. Any other interface is refused unless CurveZMQ keys are given: then every message is
encrypted and only clients whose public keys are listed in a folder are let in.

Keys are the files ``zmq.auth.create_certificates`` writes (``NAME.key`` public,
``NAME.key_secret`` secret); this module is torch-free so a client can share it.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth


class EndpointError(ValueError):
    """An address the engine must not, or cannot, listen on."""


CURVE_HINT = ("give CurveZMQ keys: --curve-secret SERVER.key_secret --curve-clients DIR "
              "(keys made with zmq.auth.create_certificates)")


def is_loopback(endpoint: str) -> bool:
    """True for ipc:// and for tcp:// on a literal loopback address or 'localhost'."""
    scheme, _, rest = endpoint.partition("://")
    if scheme == "ipc":
        return True
    if scheme != "tcp":
        return False
    host = rest.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', interface names, host names: reachable from elsewhere
        return False


def check_bind(endpoint: str, curve: bool) -> None:
    """Refuse transports the engine does not serve, and non-loopback binds without keys."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("tcp", "ipc") or not rest:
        raise EndpointError(f"cannot bind {endpoint!r}: use tcp://127.0.0.1:PORT or ipc:///path/to/socket")
    host, colon, port = rest.rpartition(":")
    if scheme == "tcp" and not (colon and host and (port == "*" or port.isdigit())):
        raise EndpointError(f"cannot bind {endpoint!r}: a tcp address needs a port, e.g. tcp://127.0.0.1:5757")
    if not curve and not is_loopback(endpoint):
        raise EndpointError(f"refusing to bind {endpoint}: it is reachable from other machines and anyone "
                            f"there could use this engine; bind tcp://127.0.0.1:PORT or ipc://PATH, or "
                            f"{CURVE_HINT}")


@dataclass(frozen=True)
class CurveServerKeys:
    public: bytes
    secret: bytes
    clients_dir: Path


def load_server_keys(secret_file: str | os.PathLike, clients_dir: str | os.PathLike) -> CurveServerKeys:
    """The server's key pair and the folder of allowed client public keys, checked."""
    secret_file, clients_dir = Path(secret_file), Path(clients_dir)
    public, secret = _load_pair(secret_file, "server")
    if not clients_dir.is_dir():
        raise EndpointError(f"--curve-clients {clients_dir} is not a folder of client public keys")
    if not any(clients_dir.glob("*.key")):
        raise EndpointError(f"--curve-clients {clients_dir} holds no *.key files: no client could connect")
    return CurveServerKeys(public, secret, clients_dir)


def _load_pair(secret_file: Path, who: str) -> tuple[bytes, bytes]:
    try:
        public, secret = zmq.auth.load_certificate(secret_file)
    except (OSError, ValueError) as exc:
        raise EndpointError(f"cannot read the {who} key file {secret_file}: {exc}") from None
    if not secret:
        raise EndpointError(f"{secret_file} holds only a public key; give the {who}'s .key_secret file")
    return public, secret


def start_authenticator(context: zmq.Context, keys: CurveServerKeys):
    """A ZAP handler thread that admits exactly the clients whose keys are in clients_dir."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.clients_dir))
    return auth


def apply_server_keys(socket: zmq.Socket, keys: CurveServerKeys) -> None:
    socket.curve_server = True
    socket.curve_publickey = keys.public
    socket.curve_secretkey = keys.secret


@dataclass(frozen=True)
class CurveClientKeys:
    """What a client needs to reach a CurveZMQ engine: the server's public key and its own pair."""
    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def from_files(cls, server_public_file: str | os.PathLike,
                   client_secret_file: str | os.PathLike) -> "CurveClientKeys":
        try:
            server_public, _ = zmq.auth.load_certificate(server_public_file)
        except (OSError, ValueError) as exc:
            raise EndpointError(f"cannot read the engine's public key {server_public_file}: {exc}") from None
        public, secret = _load_pair(Path(client_secret_file), "client")
        return cls(server_public, public, secret)

    def apply(self, socket: zmq.Socket) -> None:
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret
