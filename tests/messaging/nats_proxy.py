"""A TCP proxy in front of the NATS server that breaks connections where a test says.

- `cut()` breaks every open connection at once (a failing network, a restarting server);
- `trap(marker, ...)` breaks the next connection that carries `marker` (bytes, or a compiled
  bytes pattern) in the given direction,
  either after forwarding that chunk (the server got the message and its reply is lost: a
  PubAck, an ack's confirmation) or instead of it (the message never arrives: an ack, a
  delivery). A trap fires once; its `fired` event says when;
- `refuse(seconds)` closes every new connection at once for a while (nobody can connect).

Markers are matched per chunk read from a socket: a marker split across two reads is missed
and the trap fires on a later message. On this machine a NATS protocol message of a few hundred
bytes arrives in one read, so a trap fires on the message it was armed for, or the next one.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(eq=False)
class Trap:
    """One armed fault: break the connection at the next chunk holding `marker`."""

    marker: bytes | re.Pattern[bytes]
    upstream: bool
    """True: from the client to the server; False: from the server to the client."""
    forward: bool
    """True: the chunk reaches its destination, then the connection breaks (its reply is lost)."""
    fired: threading.Event = field(default_factory=threading.Event)

    def __str__(self) -> str:
        way = "client->server" if self.upstream else "server->client"
        marker = self.marker.pattern if isinstance(self.marker, re.Pattern) else self.marker
        return f"trap {marker!r} {way} ({'after' if self.forward else 'instead of'} forwarding)"

    def matches(self, data: bytes) -> bool:
        return bool(self.marker.search(data)) if isinstance(self.marker, re.Pattern) else self.marker in data


class _Link:
    """A proxied connection: the client's socket and the server's."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.draining = False
        """The client is gone; what the server still sends is read and dropped until it closes."""
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> bool:
        """Break both ends now; False if they were broken already."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
        for end in (self.client, self.server):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv()
            end.close()
        return True

    def drop_client(self) -> None:
        """Break the client's end but let the server read what it was sent: half-close the server's
        end (the server handles the data, then sees the end of the stream and closes)."""
        self.draining = True
        with contextlib.suppress(OSError):
            self.client.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_WR)


class FaultProxy:
    """Forwards 127.0.0.1:<port> to the NATS server at `target`; `url` is the address to give clients."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 4222)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"nats://127.0.0.1:{self.port}"
        self.accepted = 0
        self.broken = 0
        """Connections a cut or a trap broke."""
        self.traps: list[Trap] = []
        self._armed: list[Trap] = []
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._refusing_until = 0.0
        self._closing = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True)
        self._acceptor.start()

    def trap(self, marker: bytes | re.Pattern[bytes], *, upstream: bool = True, forward: bool = True) -> Trap:
        trap = Trap(marker, upstream, forward)
        with self._lock:
            self.traps.append(trap)
            self._armed.append(trap)
        return trap

    def cut(self) -> int:
        """Break every open connection; returns how many."""
        with self._lock:
            links, self._links = self._links, set()
        broken = sum(link.close() for link in links)
        self.broken += broken
        return broken

    def refuse(self, seconds: float) -> None:
        """Close new connections at once for `seconds` (the open ones are not touched)."""
        self._refusing_until = time.monotonic() + seconds

    def close(self) -> None:
        self._closing.set()
        self._acceptor.join(5)
        self.cut()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        with self._listener:
            while not self._closing.is_set():
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                if time.monotonic() < self._refusing_until:
                    client.close()
                    continue
                try:
                    server = socket.create_connection(self.target, timeout=2)
                except OSError:
                    client.close()
                    continue
                server.settimeout(None)
                link = _Link(client, server)
                with self._lock:
                    self._links.add(link)
                    self.accepted += 1
                threading.Thread(target=self._pump, args=(link, True), daemon=True).start()
                threading.Thread(target=self._pump, args=(link, False), daemon=True).start()

    def _pump(self, link: _Link, upstream: bool) -> None:
        source, target = (link.client, link.server) if upstream else (link.server, link.client)
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            if link.draining:
                continue  # the server's replies to a client that is gone
            trap = self._take(data, upstream)
            if trap is None or trap.forward:
                try:
                    target.sendall(data)
                except OSError:
                    if link.draining:
                        continue
                    break
            if trap is not None:
                self.broken += 1
                trap.fired.set()
                if trap.forward and upstream:
                    link.drop_client()  # the server gets the message; the client never hears back
                    return  # the other pump drops the server's replies until the server closes
                break
        with self._lock:
            self._links.discard(link)
        link.close()

    def _take(self, data: bytes, upstream: bool) -> Trap | None:
        with self._lock:
            for trap in self._armed:
                if trap.upstream == upstream and trap.matches(data):
                    self._armed.remove(trap)
                    return trap
        return None
