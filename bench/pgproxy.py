"""A counting PostgreSQL protocol proxy on loopback: how many round trips a request costs.

The server under test connects to the proxy instead of PostgreSQL. The proxy forwards every
byte unchanged and decodes the frontend messages: each ``Sync`` (extended protocol) or
``Query`` (simple protocol) makes the client wait for ``ReadyForQuery``, i.e. one round trip.
It records, per round trip, the SQL involved (Parse texts, and the statement a Bind runs).
SSL is declined (the proxy answers ``N`` to SSLRequest) so the stream can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


@dataclass(slots=True)
class RoundTrip:
    """One client wait: the messages sent since the previous Sync/Query."""

    connection: int
    ops: list[str] = field(default_factory=list)

    def label(self) -> str:
        """The SQL of this round trip, shortened to one line."""
        texts = []
        for op in self.ops:
            kind, _, text = op.partition(" ")
            text = " ".join(text.split())
            if kind in ("parse", "execute", "query") and text:
                texts.append(("prepare: " if kind == "parse" else "") + text)
        return " | ".join(texts) if texts else " ".join(self.ops)


def _cstring(data: bytes, start: int) -> tuple[str, int]:
    end = data.index(b"\x00", start)
    return data[start:end].decode("utf-8", "replace"), end + 1


class CountingProxy:
    """Forward 127.0.0.1:port to the real server, recording round trips."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.trips: list[RoundTrip] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._connections = 0

    # -- control (from the harness thread)

    def start(self) -> int:
        """Start listening on a free loopback port; the port."""
        self._thread = threading.Thread(target=self._run, name="pgproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self.port

    def stop(self) -> None:
        """Stop the proxy and close its connections."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def mark(self) -> int:
        """A position in the record."""
        with self._lock:
            return len(self.trips)

    def since(self, mark: int) -> list[RoundTrip]:
        """Round trips recorded after ``mark``."""
        with self._lock:
            return list(self.trips[mark:])

    # -- the proxy (its own thread and loop)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        conn_id = self._connections
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        try:
            while True:  # startup phase: messages without a type byte
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head, "big") - 4)
                code = int.from_bytes(body[:4], "big")
                if code in (SSL_REQUEST, GSS_REQUEST):
                    writer.write(b"N")
                    await writer.drain()
                    continue
                up_writer.write(head + body)
                await up_writer.drain()
                break
            pump = asyncio.create_task(self._pump(up_reader, writer))
            statements: dict[str, str] = {}
            current = RoundTrip(conn_id)
            while True:
                kind = await reader.readexactly(1)
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head, "big") - 4)
                up_writer.write(kind + head + body)
                await up_writer.drain()
                if kind == b"P":
                    name, at = _cstring(body, 0)
                    text, _ = _cstring(body, at)
                    statements[name] = text
                    current.ops.append(f"parse {text}")
                elif kind == b"B":
                    _, at = _cstring(body, 0)
                    name, _ = _cstring(body, at)
                    current.ops.append(f"execute {statements.get(name, '?')}")
                elif kind == b"Q":
                    text, _ = _cstring(body, 0)
                    current.ops.append(f"query {text}")
                    self._record(current)
                    current = RoundTrip(conn_id)
                elif kind == b"S":
                    self._record(current)
                    current = RoundTrip(conn_id)
                elif kind == b"X":
                    break
            pump.cancel()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()

    def _record(self, trip: RoundTrip) -> None:
        with self._lock:
            self.trips.append(trip)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
