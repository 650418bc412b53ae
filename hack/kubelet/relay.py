"""The local registry at its own address inside a pod's network namespace. Touches sockets and namespaces.

The registry (hack/registry.py) listens on this machine's loopback, ``127.0.0.1:PORT``, but a pod
with its own network namespace (hack/kubelet/network.py) has a loopback of its own. In a cluster,
nodes and pods reach a registry by the same name; so that a pod (the package step pushing with
crane) uses the very reference the runner pulls, the runner listens on ``127.0.0.1:PORT`` inside
the pod's namespace and relays every connection to the registry on this machine. Only that port.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _listen_in(netns: str, host: str, port: int) -> socket.socket:
    """A listening socket bound in ``netns``; made by a throw-away thread, as setns moves only the
    calling thread (the runner's other threads stay in this machine's namespace)."""
    made: list[socket.socket | OSError] = []

    def inner() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            made.append(socket.create_server((host, port)))
        except OSError as exc:
            made.append(exc)

    t = threading.Thread(target=inner, daemon=True)
    t.start()
    t.join()
    if isinstance(made[0], OSError):
        raise made[0]
    return made[0]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class Relay:
    """Relays ``host:port`` inside ``netns`` to ``host:port`` on this machine until ``close()``."""

    def __init__(self, netns: str, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server = _listen_in(netns, host, port)
        self.server.settimeout(0.5)
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        self.server.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        try:
            upstream = socket.create_connection((self.host, self.port), timeout=10)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
        back.start()
        _pump(conn, upstream)
        back.join()
        conn.close()
        upstream.close()

    def close(self) -> None:
        self.closed.set()
