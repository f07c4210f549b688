"""Benchmark `authkit-setup render` against the fake Render API (issue 14 targets).

    python -m benchmarks.bench_render

The fake makes Postgres available 20 s after creation and Key Value after 10 s, and its stores
are real roles/users on local PostgreSQL and Redis behind TLS fronts, so verification is real.
Targets: a fresh run ≤ 1.1 x the slower store's ready time (20 s) with ≤ 30 API requests; a
no-change re-run ≤ 8 requests.
Exits 1 if a target is missed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from tests.fakes.render_api import FAKE_RENDER_KEY, FakeRenderAPI, RealBackend
from tests.servers import PostgresTlsProxy, RedisTlsProxy, make_tls_material

from benchmarks._common import entry_point, local_servers, report

POSTGRES_READY_AFTER = 20.0
REDIS_READY_AFTER = 10.0
TARGET_WALL_RATIO = 1.1
TARGET_FRESH_REQUESTS = 30
TARGET_RERUN_REQUESTS = 8


def main() -> int:
    import subprocess

    ok = True
    with local_servers() as servers, tempfile.TemporaryDirectory() as tmp:
        tls = make_tls_material(Path(tmp) / "tls")
        with (
            PostgresTlsProxy("127.0.0.1", servers.pg.port, tls) as pg_tls,
            RedisTlsProxy("127.0.0.1", servers.redis.port, tls) as redis_tls,
        ):
            backend = RealBackend(
                pg_superuser_url=servers.pg.superuser_url(),
                pg_external_host="127.0.0.1",
                pg_external_port=pg_tls.port,
                redis_admin_url=servers.redis.url(),
                redis_external_host="127.0.0.1",
                redis_external_port=redis_tls.port,
            )
            fake = FakeRenderAPI(
                backend=backend,
                postgres_ready_after=POSTGRES_READY_AFTER,
                redis_ready_after=REDIS_READY_AFTER,
            )
            try:
                fake.add_owner("AuthKit Team")
                fake.add_service(
                    "authkit-api", region="ohio", env={f"VAR_{i}": str(i) for i in range(120)}
                )
                env = {
                    **os.environ,
                    "RENDER_API_URL": fake.base_url,
                    "RENDER_API_KEY": FAKE_RENDER_KEY,
                    "SSL_CERT_FILE": str(tls.ca_pem_path),
                }
                argv = [*entry_point(), "render", "--service", "authkit-api", "--yes", "--json"]

                start = time.perf_counter()
                fresh = subprocess.run(
                    argv, capture_output=True, text=True, env=env, cwd=tmp, check=False
                )
                wall = time.perf_counter() - start
                fresh_requests = fake.count()
                ok &= fresh.returncode == 0
                if fresh.returncode != 0:
                    print(fresh.stdout, fresh.stderr, file=sys.stderr)
                slower = max(POSTGRES_READY_AFTER, REDIS_READY_AFTER)
                ok &= report(
                    f"fresh run, wall / slower store's ready time ({wall:.1f} s / {slower:.0f} s)",
                    wall / slower,
                    TARGET_WALL_RATIO,
                    "x",
                )
                ok &= report(
                    "fresh run, API requests", fresh_requests, TARGET_FRESH_REQUESTS, "requests"
                )
                if os.environ.get("BENCH_VERBOSE"):
                    from collections import Counter

                    kinds = Counter(f"{r.method} {r.path}" for r in fake.requests)
                    print("      ", dict(kinds))

                fake.reset_log()
                start = time.perf_counter()
                rerun = subprocess.run(
                    argv, capture_output=True, text=True, env=env, cwd=tmp, check=False
                )
                rerun_wall = time.perf_counter() - start
                ok &= rerun.returncode == 0
                ok &= report(
                    "no-change re-run, API requests",
                    fake.count(),
                    TARGET_RERUN_REQUESTS,
                    "requests",
                )
                print(f"info  no-change re-run, wall: {rerun_wall:.3f} s")
            finally:
                fake.drop_backend_stores()
                fake.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
