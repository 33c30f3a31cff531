"""Clip list and search latency: GET /api/v1/clips with 10,000 clips, under concurrent clients,
on Postgres and on SQLite.

A throwaway database (on 127.0.0.1:5432, or an SQLite file) gets 10,000 clip states (six
cameras, mixed outcomes and summaries, received over 30 days). The real service (`homesec
run`, with the zero-cost fakes of tests/fakes, auth on) serves the API in its own process;
this process runs the clients, each request timed from send to last byte. For each database
and number of concurrent clients it prints p50/p95/p99, throughput and the server's CPU time
per request (from /proc) per query shape: the plain list shapes, and full-text searches
(`q=`). Targets: p95 under 50 ms; a search costs at most twice the plain first page. The
server is one process (as HomeSec is): once its core is saturated, latency grows with the
clients in line, about clients x CPU per request.

    uv run python -m bench.api [--clips 10000] [--concurrency 1,4,8,16] [--requests 400]
                               [--databases postgres,sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from tests.api.seeding import clip_state, insert_states
from tests.services.postgres import free_port

from homesec.models.config import StateStoreConfig
from homesec.models.enums import RiskLevel, StageName
from homesec.models.state import ClipStateData
from homesec.repository.clip_repository import ClipRepository

PG = "postgresql://postgres@127.0.0.1:5432"
DSN_ENV = "HOMESEC_BENCH_DSN"
KEY_ENV = "HOMESEC_BENCH_API_KEY"
API_KEY = "bench-key"
CAMERAS = ["front_door", "backyard", "driveway", "garage", "porch", "side_gate"]
NOW = datetime.now(UTC)

Params = dict[str, str]
Scenario = Callable[[random.Random], Params]


def _scenarios() -> dict[str, Scenario]:
    week_ago = (NOW - timedelta(days=7)).isoformat()
    return {
        "first page (50)": lambda _: {"limit": "50"},
        "camera filter": lambda rng: {"camera": rng.choice(CAMERAS), "limit": "50"},
        "risk=high & alerted": lambda _: {"risk_level": "high", "alerted": "true"},
        "detected class (rare)": lambda _: {"detected_class": "dog", "limit": "50"},
        "last 7 days, errors": lambda _: {"since": week_ago, "status": "error"},
        "pages 1-20 by cursor": lambda _: {"limit": "50", "walk": "1"},
        SEARCH_BASELINE: lambda _: {"q": "red jacket", "limit": "50"},
        "search: time phrase": lambda _: {"q": "delivery after 6 pm", "limit": "50"},
        "search: common word": lambda _: {"q": "person", "limit": "50"},
        "search + camera": lambda rng: {"q": "dog", "camera": rng.choice(CAMERAS)},
        "search pages by cursor": lambda _: {"q": "parcel", "limit": "50", "walk": "1"},
    }


SEARCH_BASELINE = "search: two words"
SUMMARIES = [
    ("delivery", "A courier in a red jacket leaves a parcel at the door."),
    ("delivery", "A courier in a blue jacket leaves a parcel and rings."),
    ("animal", "A dog runs across the lawn and sniffs the bins."),
    ("passerby", "A person walks past on the pavement without stopping."),
    ("loitering", "A person in a dark hoodie lingers by the gate for a minute."),
    ("vehicle", "A van parks in the driveway and a person gets out."),
]


def _states(count: int, rng: random.Random) -> list[tuple[ClipStateData, datetime]]:
    rows = []
    for n in range(count):
        camera = CAMERAS[n % len(CAMERAS)]
        person = rng.random() < 0.6
        risk = rng.choice(list(RiskLevel)) if person else None
        state = clip_state(
            camera,
            1_700_000_000 + n,
            classes=(["person"] if person else []) + (["dog"] if rng.random() < 0.02 else []),
            risk=risk,
            alerted=risk is not None and risk >= RiskLevel.MEDIUM,
            failed_stage=StageName.VLM if rng.random() < 0.03 else None,
        )
        received = NOW - timedelta(days=30) + timedelta(days=30) * n / count
        state.start_ts = received
        if state.analysis_result is not None:
            activity, summary = rng.choice(SUMMARIES)
            state.analysis_result.activity_type = activity
            state.analysis_result.summary = summary
        rows.append((state, received))
    return rows


async def _seed(config: StateStoreConfig, count: int) -> None:
    repository = ClipRepository.from_config(config)
    await repository.start()  # applies the migrations
    await repository.aclose()
    rows = _states(count, random.Random(7))
    for start in range(0, count, 1000):
        await insert_states(config, rows[start : start + 1000])
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        admin = await asyncpg.connect(dsn)
        await admin.execute("ANALYZE clip_states")
        await admin.execute("ANALYZE clip_search")
        await admin.close()


def _serve(work: Path, port: int, sqlite_path: Path) -> subprocess.Popen[bytes]:
    config = {
        "cameras": [
            {
                "name": "bench",
                "source": {"backend": "local_folder", "config": {"watch_dir": str(work / "in")}},
            }
        ],
        "storage": {"backend": "local", "config": {"root": str(work / "storage")}},
        "state_store": {"dsn_env": DSN_ENV, "sqlite_path": str(sqlite_path)},
        "filter": {"backend": "fake_filter", "config": {}},
        "server": {"port": port, "auth_enabled": True, "api_key_env": KEY_ENV},
        "logging": {"level": "WARNING"},
        "pipeline": {"work_dir": str(work / "work")},
    }
    path = work / "config.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    env = {**os.environ, KEY_ENV: API_KEY}
    command = [sys.executable, "-m", "tests.fakes.run_homesec", "run", "--config", str(path)]
    return subprocess.Popen(command, env=env, cwd=Path(__file__).parents[1])


async def _wait_for(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the service exited while starting")
        try:
            if (await client.get("/api/v1/clips", params={"limit": "1"})).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the service did not answer within 60 s")


async def _measure(
    client: httpx.AsyncClient, scenario: Scenario, requests: int, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        cursor: str | None = None
        pages = 0
        for _ in remaining:
            params = scenario(rng)
            if params.pop("walk", None):
                # Each worker reads on through older pages, starting over after 20.
                if cursor is not None and pages < 20:
                    params["cursor"] = cursor
                else:
                    pages = 0
            started = time.perf_counter()
            response = await client.get("/api/v1/clips", params=params)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            cursor, pages = response.json()["next_cursor"], pages + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(seed) for seed in range(concurrency)))
    return latencies, time.perf_counter() - started


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


async def _run(count: int, concurrency: list[int], requests: int, databases: list[str]) -> None:
    for engine in databases:
        if engine == "postgres":
            await _on_postgres(count, concurrency, requests)
        else:
            os.environ.pop(DSN_ENV, None)
            with tempfile.TemporaryDirectory() as tmp:
                await _serve_and_measure(Path(tmp), engine, count, concurrency, requests)


async def _on_postgres(count: int, concurrency: list[int], requests: int) -> None:
    database = f"homesec_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        os.environ[DSN_ENV] = f"{PG}/{database}"
        with tempfile.TemporaryDirectory() as tmp:
            await _serve_and_measure(Path(tmp), "postgres", count, concurrency, requests)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def _serve_and_measure(
    work: Path, engine: str, count: int, concurrency: list[int], requests: int
) -> None:
    sqlite_path = work / "state.db"
    await _seed(StateStoreConfig(dsn_env=DSN_ENV, sqlite_path=sqlite_path), count)
    port = free_port()
    server = _serve(work, port, sqlite_path)
    limits = httpx.Limits(max_connections=max(concurrency))
    headers = {"X-API-Key": API_KEY}
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=30
        ) as client:
            await _wait_for(client, server)
            for clients in concurrency:
                await _report(client, server.pid, engine, count, clients, requests)
    finally:
        server.terminate()
        server.wait(30)


async def _report(
    client: httpx.AsyncClient,
    server_pid: int,
    engine: str,
    count: int,
    concurrency: int,
    requests: int,
) -> None:
    print(f"\nclip list, {count} clips in {engine}, {concurrency} concurrent client(s), auth on")
    print(
        f"  {'query':<24}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'req/s':>8}"
        f"{'server cpu':>12}{'client cpu':>12}  (ms/req)"
    )
    worst_p95 = 0.0
    cpu_per_shape: dict[str, float] = {}
    for name, scenario in _scenarios().items():
        await _measure(client, scenario, concurrency * 5, concurrency)  # warm-up
        cpu_before, client_before = _cpu_seconds(server_pid), time.process_time()
        latencies, elapsed = await _measure(client, scenario, requests, concurrency)
        cpu_ms = (_cpu_seconds(server_pid) - cpu_before) * 1000 / len(latencies)
        client_ms = (time.process_time() - client_before) * 1000 / len(latencies)
        p95 = _percentile(latencies, 95)
        worst_p95 = max(worst_p95, p95)
        cpu_per_shape[name] = cpu_ms
        print(
            f"  {name:<24}{_percentile(latencies, 50):8.1f}{p95:8.1f}"
            f"{_percentile(latencies, 99):8.1f}{len(latencies) / elapsed:8.0f}{cpu_ms:12.1f}"
            f"{client_ms:12.1f}"
        )
    verdict = "meets" if worst_p95 < 50 else "MISSES"
    print(f"  worst p95 {worst_p95:.1f} ms: {verdict} the 50 ms target")
    ratio = cpu_per_shape[SEARCH_BASELINE] / cpu_per_shape["first page (50)"]
    verdict = "meets" if ratio <= 2 else "MISSES"
    print(f"  search / first page server cpu: {ratio:.2f}x: {verdict} the 2x target")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--concurrency", default="1,4,8,16", help="comma-separated levels")
    parser.add_argument("--requests", type=int, default=400, help="per query shape and level")
    parser.add_argument("--databases", default="postgres,sqlite", help="postgres, sqlite or both")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    asyncio.run(_run(args.clips, levels, args.requests, args.databases.split(",")))


if __name__ == "__main__":
    main()
