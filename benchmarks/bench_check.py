"""Benchmark start-up and `check` as ratios to floors measured in the same run (issue 14).

    python -m benchmarks.bench_check [--rounds N]

Absolute times on these 2-core machines swing by ±30 %, so every figure is a ratio of medians
to a floor timed in the same rounds, the commands interleaved round by round:
- `authkit-setup --help` ≤ 1.2 x and `authkit-setup <command> --help` (the slowest command)
  ≤ 1.5 x the floor `python -c "import typer"` (same interpreter);
- `check` of two healthy local servers ≤ 1.2 x the floor: the same interpreter importing psycopg
  and redis, connecting to both concurrently and running `SELECT 1` / `PING`;
- `check` with both hosts silent and `--timeout 2` ≤ 2.6 s (a timeout is absolute by nature).
Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time

from benchmarks._common import child_env, entry_point, local_servers, report, time_command

TARGET_HELP_RATIO = 1.2
TARGET_COMMAND_HELP_RATIO = 1.5
TARGET_CHECK_RATIO = 1.2
TARGET_SILENT = 2.6
COMMANDS = (
    "render",
    "check",
    "provision",
    "status",
    "teardown",
    "local",
    "migrations",
    "backup",
    "blueprint",
)

DRIVER_FLOOR = """
import sys, threading
import psycopg, redis

def postgres():
    with psycopg.connect(sys.argv[1], connect_timeout=10) as conn:
        conn.execute("SELECT 1").fetchone()

def key_value():
    client = redis.Redis.from_url(sys.argv[2], socket_timeout=10)
    client.ping()
    client.close()

threads = [threading.Thread(target=postgres), threading.Thread(target=key_value)]
for t in threads: t.start()
for t in threads: t.join()
"""


def interleaved(rows: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """Median wall seconds of each command line, run one after another in every round."""
    timings: dict[str, list[float]] = {name: [] for name in rows}
    env = child_env()
    for argv in rows.values():  # warm-up: page cache, .pyc files
        subprocess.run(argv, capture_output=True, env=env, check=False)
    for _ in range(rounds):
        for name, argv in rows.items():
            start = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, env=env, check=False)
            timings[name].append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    return {name: statistics.median(values) for name, values in timings.items()}


def ratio(name: str, value: float, floor: float, target: float) -> bool:
    share = value / floor
    ok = share <= target
    print(
        f"{'PASS' if ok else 'FAIL'}  {name}: {share:.2f} x the floor "
        f"({value * 1000:.0f} ms / {floor * 1000:.0f} ms; target ≤ {target:g} x)"
    )
    return ok


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
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    cli = entry_point()
    ok = True

    rows = {"floor": [sys.executable, "-c", "import typer"], "--help": [*cli, "--help"]}
    rows |= {f"{name} --help": [*cli, name, "--help"] for name in COMMANDS}
    medians = interleaved(rows, args.rounds)
    floor = medians.pop("floor")
    ok &= ratio("authkit-setup --help", medians.pop("--help"), floor, TARGET_HELP_RATIO)
    slowest = max(medians, key=medians.__getitem__)
    ok &= ratio(
        f"authkit-setup <command> --help (slowest: {slowest})",
        medians[slowest],
        floor,
        TARGET_COMMAND_HELP_RATIO,
    )

    with local_servers() as servers:
        urls = [servers.database_url(), servers.redis_url()]
        rows = {
            "floor": [sys.executable, "-c", DRIVER_FLOOR, *urls],
            "check": [*cli, "check", "--database-url", urls[0], "--redis-url", urls[1]],
        }
        medians = interleaved(rows, args.rounds)
        ok &= ratio(
            "check, two healthy local servers",
            medians["check"],
            medians["floor"],
            TARGET_CHECK_RATIO,
        )

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
        median, _, code = time_command(argv, max(3, args.rounds // 3))
        ok &= code == 1
        ok &= report("check, both hosts silent, --timeout 2", median, TARGET_SILENT)
    finally:
        listener.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
