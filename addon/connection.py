"""The add-on's one link to the engine: engine/client.py and engine/protocol.py (and the
numpy-only engine/sequence.py for the temporal filter), bundled
into ``wire/`` by tools/build_addon.py (or the repository's ``engine`` package when the
add-on runs from a source checkout). One client per address, used on the main thread."""
from __future__ import annotations

try:
    from .wire import client, protocol, sequence  # the built extension
except ImportError:  # a source checkout with the repository on sys.path
    from engine import client, protocol, sequence  # noqa: F401

from .preset_list import read_presets_reply

EngineClient, EngineError, EngineTimeout = client.EngineClient, client.EngineError, client.EngineTimeout

# A UI must not hang on an engine that is down: short deadlines for quick questions.
QUICK_TIMEOUT = 3.0


class Link:
    """The client for the configured address, and what the engine last said about itself."""

    def __init__(self):
        self._client: client.EngineClient | None = None
        self.hello: dict | None = None
        self.presets: list[dict] = []
        self.broken: list[dict] = []  # presets the engine cannot load: {"name", "reason"}
        self.last_error: str = ""
        self._done: dict = {}            # request id -> reply, collected for its owner
        self._abandoned: set[str] = set()  # ids whose replies nobody wants any more
        self.progress: dict[str, dict] = {}  # request id -> latest progress event

    def client(self, endpoint: str) -> client.EngineClient:
        if self._client is None or self._client.endpoint != endpoint:
            self.close()
            self._client = client.EngineClient(endpoint)
        return self._client

    def refresh(self, endpoint: str, timeout: float = QUICK_TIMEOUT) -> bool:
        """Ask the engine who it is and which presets it has (with their thumbnails, and the
        broken ones); False (and last_error) if it does not answer."""
        try:
            c = self.client(endpoint)
            self.hello = c.hello(timeout=timeout)
            reply = c.call("presets", timeout=timeout)  # not c.presets(): it drops `broken`
            listing = read_presets_reply(reply.header, reply.payloads)
            self.presets, self.broken = listing.presets, listing.broken
            self.last_error = ""
            return True
        except EngineError as exc:
            self.hello, self.last_error = None, exc.message
            return False

    def take(self, rid: str, wait: float = 0.0):
        """The reply to request ``rid`` if it has come (or timed out), else None. One client
        serves several owners (a job, a status refresh), so replies are sorted by id."""
        if rid not in self._done and self._client is not None:
            for reply in self._client.poll(wait):
                if reply.id in self._abandoned:
                    self._abandoned.discard(reply.id)
                else:
                    self._done[reply.id] = reply
            for event in self._client.events():
                if event.id is not None and isinstance(event.header.get("progress"), dict):
                    self.progress[event.id] = event.header["progress"]
        return self._done.pop(rid, None)

    def abandon(self, rid: str) -> None:
        """Nobody will take ``rid``'s reply: drop it when it comes."""
        self.progress.pop(rid, None)
        if self._done.pop(rid, None) is None and self._client is not None and rid in self._client.pending():
            self._abandoned.add(rid)

    def close(self) -> None:
        self._done.clear()
        self._abandoned.clear()
        self.progress.clear()
        if self._client is not None:
            self._client.close()
            self._client = None


LINK = Link()
