#!/usr/bin/env python3
"""CPU of a new TLS connection, and of one through a CONNECT tunnel, against a plain floor.

Starts `wxtoken emulator --tls` on 127.0.0.1 and a minimal CONNECT relay on 127.0.0.1, then, in
interleaved rounds, opens N fresh connections (TCP + TLS handshake, then closed) with:

  floor       ssl.create_default_context(cafile=CA): OpenSSL with the one CA, directly
  wxtoken     transport.trust.trusted_context(Anchors(ca_file=CA)): the OS store plus the CA,
              as every profile's transport uses it, directly
  truststore  truststore.SSLContext with the CA added: what a truststore context costs per
              handshake on this platform (on Linux it reloads the OS bundle each time)
  tunnel      wxtoken's context through the CONNECT relay (StdlibTransport's tunnel code)

CPU is this process's time.process_time() per connection; ratios are taken per round and the
median printed. Target: wxtoken within 1.5x the floor (the trust store loaded once per process,
not per handshake). The relay runs in this process, so the tunnel's figure includes the relay's
own copying: an upper bound on what CONNECT costs the client.

    .venv/bin/python bench/tls_connect.py [--connections N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from wxtoken.transport.budget import Budget
from wxtoken.transport.connection import Origin
from wxtoken.transport.proxy import Proxy
from wxtoken.transport.trust import Anchors, trusted_context
from wxtoken.transport.tunnel import open_tunnel

WXTOKEN = str(Path(sys.executable).parent / "wxtoken")


def relay() -> int:
    """A CONNECT proxy on 127.0.0.1 that tunnels to 127.0.0.1 only; returns its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            b.close()

    def serve(client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        port = int(head.split(b" ", 2)[1].rsplit(b":", 1)[1])
        upstream = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def accept() -> None:
        while True:
            client, _ = server.accept()
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(server.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    emu = subprocess.Popen(
        [WXTOKEN, "emulator", "--tls", "--json", "--quiet"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert emu.stdout is not None
        info = json.loads(emu.stdout.readline())
        ca = info["ca_file"]
        port = int(info["base_url"].rsplit(":", 1)[1])
        proxy = Proxy("127.0.0.1", relay(), "bench")
        floor_ctx = ssl.create_default_context(cafile=ca)
        ours = trusted_context(Anchors(ca_file=ca))
        paths: dict[str, Callable[[], None]] = {
            "floor": lambda: direct(floor_ctx, port),
            "wxtoken": lambda: direct(ours, port),
            "tunnel": lambda: tunnelled(ours, proxy, port),
        }
        try:
            import truststore

            ts = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ts.load_verify_locations(cafile=ca)
            paths["truststore"] = lambda: direct(ts, port)
        except ImportError:
            pass
        ratios: dict[str, list[float]] = {name: [] for name in paths if name != "floor"}
        last: dict[str, float] = {}
        for _ in range(args.rounds):
            cpu = {name: per_connection(fn, args.connections) for name, fn in paths.items()}
            for name in ratios:
                ratios[name].append(cpu[name] / cpu["floor"])
            last = cpu
        print(f"new TLS connection, CPU per connection ({args.connections} x {args.rounds} rounds)")
        print(f"  floor       {last['floor'] * 1000:7.2f} ms")
        for name, values in ratios.items():
            print(
                f"  {name:11} {last[name] * 1000:7.2f} ms   "
                f"median {statistics.median(values):5.2f}x floor"
            )
    finally:
        emu.terminate()
        emu.wait(10)
    return 0


def per_connection(fn: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def direct(ctx: ssl.SSLContext, port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    ctx.wrap_socket(sock, server_hostname="127.0.0.1").close()


def tunnelled(ctx: ssl.SSLContext, proxy: Proxy, port: int) -> None:
    budget = Budget(
        Origin("https", "127.0.0.1", port), time.monotonic() + 10, time.monotonic, 10, 10, 10
    )
    sock = open_tunnel(proxy, "127.0.0.1", port, budget)
    ctx.wrap_socket(sock, server_hostname="127.0.0.1").close()


if __name__ == "__main__":
    sys.exit(main())
