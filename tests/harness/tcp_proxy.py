"""A loopback TCP proxy that a test can cut: one replica reaches PostgreSQL through it, so its
database connections can be taken away while the process itself runs on (a network partition
between that replica and the database).

`cut()`: every connection through it is closed on both sides (the server sees its sessions end,
the client sees them drop) and new ones are refused at once, until `heal()`. (A silent partition
is a frozen process to the server: `tests/bot/delivery/test_replicas.py` has that with SIGSTOP.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from tests.harness.loopback import LOOPBACK


@dataclass
class TcpProxy:
    target_port: int
    host: str = LOOPBACK
    port: int = 0
    _listener: socket.socket | None = None
    _pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cut: bool = False
    _stopped: bool = False
    connections: int = 0

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()
        return self

    def url_for(self, url: str) -> str:
        """`url` (a postgresql:// URL to the target port) pointed at this proxy instead."""
        return url.replace(f":{self.target_port}/", f":{self.port}/", 1)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                client.close()  # refused: the database is out of reach
                continue
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every connection through the proxy and refuse new ones."""
        self._cut = True
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def heal(self) -> None:
        self._cut = False

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        if self._listener is not None:
            self._listener.close()
