"""Publish the management namespace's 127.0.0.1:PORT on the root namespace's 127.0.0.1:PORT.

The daemon of a namespace lab runs inside the management namespace; a person at the machine
reaches its API through this forwarder. It listens on 127.0.0.1 of the root namespace only, and
each outgoing connection is made by a socket created inside the management namespace (by a
thread that entered it) to 127.0.0.1 there: no lab address is ever addressed from the root
namespace, and nothing but that one port is reachable.

    python -m lab.netns.forward --netns oss-metro-mgmt --port 8080 [--listen-port 8080]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

from lab.netns.nsenter import namespace_thread

LOOPBACK = "127.0.0.1"


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    back.start()
    _pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _connector(port: int) -> socket.socket:
    # Runs in the namespace's thread: the socket belongs to the management namespace.
    return socket.create_connection((LOOPBACK, port), timeout=10)


def serve(namespace: str, port: int, listen_port: int, ready_file: Path | None = None) -> None:
    inside = namespace_thread(namespace)
    listener = socket.create_server((LOOPBACK, listen_port), reuse_port=False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    listener.settimeout(0.5)
    if ready_file is not None:
        ready_file.touch()
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        try:
            upstream = inside.submit(_connector, port).result()
        except OSError:
            client.close()  # the daemon is not listening (yet): the client sees a reset
            continue
        upstream.settimeout(None)
        client.settimeout(None)
        threading.Thread(target=_relay, args=(client, upstream), daemon=True).start()
    listener.close()
    inside.shutdown(wait=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.netns.forward")
    parser.add_argument("--netns", required=True, help="the management namespace")
    parser.add_argument("--port", type=int, required=True, help="its 127.0.0.1 port")
    parser.add_argument("--listen-port", type=int, help="the root's 127.0.0.1 port (same)")
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    serve(args.netns, args.port, args.listen_port or args.port, args.ready_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
