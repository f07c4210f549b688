"""Benchmark `authkit-setup --help` and `check` (issue 2 targets, process wall, median).

    python -m benchmarks.bench_check [--runs N]

Targets: --help ≤ 0.150 s; check against two healthy local servers ≤ 0.600 s; check with both
hosts silent and --timeout 2 ≤ 2.6 s. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading

from benchmarks._common import entry_point, local_servers, report, time_command

TARGET_HELP = 0.150
TARGET_CHECK = 0.600
TARGET_SILENT = 2.6


def silent_listener() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)  # never answers

    threading.Thread(target=accept, daemon=True).start()
    return sock, int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    cli = entry_point()
    ok = True

    median, _, _ = time_command([*cli, "--help"], args.runs)
    ok &= report("authkit-setup --help", median, TARGET_HELP)
    median, _, _ = time_command([*cli, "--version"], args.runs)
    ok &= report("authkit-setup --version", median, TARGET_HELP)

    with local_servers() as servers:
        argv = [
            *cli,
            "check",
            "--database-url",
            servers.database_url(),
            "--redis-url",
            servers.redis_url(),
        ]
        median, _, code = time_command(argv, args.runs)
        ok &= code == 0
        ok &= report("check, two healthy local servers", median, TARGET_CHECK)

    listener, port = silent_listener()
    try:
        argv = [
            *cli,
            "check",
            "--timeout",
            "2",
            "--database-url",
            f"postgresql://u:p@127.0.0.1:{port}/db",
            "--redis-url",
            f"redis://:p@127.0.0.1:{port}/0",
        ]
        median, _, code = time_command(argv, max(3, args.runs // 3))
        ok &= code == 1
        ok &= report("check, both hosts silent, --timeout 2", median, TARGET_SILENT)
    finally:
        listener.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
