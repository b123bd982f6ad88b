"""Benchmark: the live-update fan-out of one collection cycle, against broadcast-to-all.

1000 WebSocket connections, 100 workers; each connection subscribed to one worker
(`workers/<id>`, 10 connections per worker) and 10 of them also to `fleet`. A collection cycle
changes all 100 workers (new metrics): the workers table's stream (moto's DynamoDB Streams,
NEW_AND_OLD_IMAGES, read with GetRecords as the local mode's pump does) yields a 100-record batch,
and the real broadcaster handler (Powertools batch parsing, image diff through the REST views,
coalescing, one subscriber Query per topic on moto's DynamoDB, concurrent posts) fans it out,
and meanwhile puts the same events on the custom EventBridge bus (moto's, with the local mode's
rules) through the real PutEvents adapter.

Prints messages sent, what broadcast-to-all would send, messages that reached a connection not
subscribed to their topic (must be 0), PostToConnection calls, subscription Queries, DynamoDB
reads, PutEvents calls and entries, and per 100-record batch the broadcaster's wall time and CPU
split: process CPU, the part spent inside moto answering (thread CPU inside moto's request
handler) and inside the local @connections server (its thread's CPU, `--poster http`), and the
rest: the broadcaster's own (its code, botocore's client side, the poster client). `--profile`
adds a cProfile of every thread that ran the broadcaster, split the same way.

Posts go to an in-memory @connections twin by default (it records every message, so each
delivery is checked against the subscriptions); `--poster http` posts through the real boto3
`apigatewaymanagementapi` client to the local mode's @connections server over loopback HTTP
(each post is then one HTTP request: that is what costs the time).

    .venv/bin/python benchmarks/broadcast_fanout.py [--cycles 3] [--poster memory|http] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "local")]
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "CmlCloudManager",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "LOG_LEVEL": "ERROR",
    }
)

from moto import mock_aws  # noqa: E402
from pynamodb.connection.base import Connection as PynamoConnection  # noqa: E402

from cmlcm import container  # noqa: E402
from cmlcm.adapters.connections_api import ApiGatewayConnections, MemoryConnections  # noqa: E402
from cmlcm.adapters.dynamo import DynamoWorkerRepository  # noqa: E402
from cmlcm.adapters.event_bus import EventBridgeBus  # noqa: E402
from cmlcm.adapters.subscriptions import DynamoConnectionStore, create_realtime_tables  # noqa: E402
from cmlcm.container import current  # noqa: E402
from cmlcm.domain.events import FLEET_TOPIC, worker_topic  # noqa: E402
from cmlcm.domain.workers import Worker, WorkerMetrics, WorkerStatus  # noqa: E402
from cmlcm.handlers import broadcaster  # noqa: E402
from cmlcm.services import realtime  # noqa: E402
from cmlcm_local import moto_glue  # noqa: E402
from cmlcm_local.event_bus import LocalEventBus  # noqa: E402
from cmlcm_local.seed import fresh_backend  # noqa: E402
from cmlcm_local.streams import StreamPump, enable_streams  # noqa: E402

CONNECTIONS = 1000
WORKERS = 100
FLEET_WATCHERS = 10
READ_OPS = {"GetItem", "Query", "Scan", "BatchGetItem"}
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
#: Thread-name prefixes of the broadcaster's pools (cmlcm.pools.shared_pool names).
BROADCASTER_POOLS = ("subscriber-query", "post-to-connection", "publish", "put-events")


class DynamoCounter:
    """Counts PynamoDB's DynamoDB requests by operation (the store's reads and writes)."""

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()
        self._original = PynamoConnection.dispatch

    def __enter__(self) -> DynamoCounter:
        counter = self

        def dispatch(conn: Any, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
            counter.ops[operation_name] += 1
            return counter._original(conn, operation_name, operation_kwargs)

        PynamoConnection.dispatch = dispatch  # type: ignore[method-assign, assignment]  # monkeypatch: counts requests
        return self

    def __exit__(self, *exc: object) -> None:
        PynamoConnection.dispatch = self._original  # type: ignore[method-assign]


class ThreadProfiles:
    """cProfile (thread CPU time) of every thread the broadcaster runs on: its pools' threads
    from their start (they serve the broadcaster only) and the calling thread around each handler
    call. Paused while moto answers a request, so what it holds is the broadcaster's own CPU."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._local = threading.local()
        self.main = self._new()
        self._local.off = True  # the calling thread: on only inside handler calls

        def start(frame: Any, event: str, arg: Any) -> None:
            if threading.current_thread().name.startswith(BROADCASTER_POOLS):
                self._new().enable()  # replaces this hook in the new thread
            else:  # the benchmark's own writers (save_many's pool): not the broadcaster
                sys.setprofile(None)

        threading.setprofile(start)

    def _new(self) -> cProfile.Profile:
        profile = cProfile.Profile(time.thread_time)
        self.profiles.append(profile)
        self._local.profile = profile
        return profile

    def enable_main(self, on: bool) -> None:
        self._local.off = not on
        (self.main.enable if on else self.main.disable)()

    def pause(self) -> cProfile.Profile | None:
        """Stop this thread's profile while moto answers; the one to resume, if it was on."""
        profile = getattr(self._local, "profile", None)
        if profile is None or getattr(self._local, "off", False):
            return None
        profile.disable()
        return profile

    def stats(self) -> pstats.Stats:
        threading.setprofile(None)
        stats = pstats.Stats(self.main)
        for profile in self.profiles[1:]:
            profile.create_stats()
            if profile.stats:
                stats.add(profile)
        return stats


class MotoCpu:
    """CPU spent inside moto answering requests (thread CPU time, so concurrent calls add up
    correctly), counted by moto's botocore stub around each request it handles."""

    def __init__(self, profiles: ThreadProfiles | None = None) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        self.seconds = 0.0
        self.requests = 0
        #: CPU by operation (X-Amz-Target: DynamoDB_20120810.Query, AWSEvents.PutEvents...).
        self.by_operation: dict[str, float] = {}
        self._lock = threading.Lock()
        self._owner = BotocoreStubber
        self._original = BotocoreStubber.__call__
        meter = self

        def timed(stub: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            paused = profiles.pause() if profiles else None
            started = time.thread_time()
            try:
                return meter._original(stub, event_name, request, **kwargs)
            finally:
                spent = time.thread_time() - started
                with meter._lock:
                    meter.seconds += spent
                    meter.requests += 1
                    target = request.headers.get("X-Amz-Target") or "other"
                    operation = target.decode() if isinstance(target, bytes) else str(target)
                    meter.by_operation[operation] = meter.by_operation.get(operation, 0.0) + spent
                if paused is not None:
                    paused.enable()

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign, assignment]  # monkeypatch: a CPU meter

    def restore(self) -> None:
        self._owner.__call__ = self._original  # type: ignore[method-assign]


def print_profile(stats: pstats.Stats, batches: int) -> None:
    """The broadcaster's own CPU (moto excluded, see ThreadProfiles) and its top functions."""
    # An idle pool thread's wait for work is no CPU of the batch's (cProfile still books some).
    waits = ("<method 'get' of '_queue.SimpleQueue' objects>", "<method 'acquire' of '_thread.lock' objects>")
    entries = {k: v for k, v in stats.stats.items() if k[2] not in waits}  # type: ignore[attr-defined]
    own = sum(value[2] for value in entries.values())
    print(f"\ncProfile (thread CPU) of the broadcaster's threads, moto excluded, per batch over {batches}:")
    print(f"  the broadcaster's own CPU: {own / batches * 1000:.0f} ms (profiler overhead included)")
    print("  top functions by own time:")
    top = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:15]
    for (file, line, name), (_, calls, tottime, _, _) in top:
        where = _short(file)
        print(f"    {tottime / batches * 1000:6.1f} ms  {calls // batches:6d} calls  {name}  ({where}:{line})")
    print("  by cumulative time (product code):")
    product = [item for item in entries.items() if "functions/cmlcm" in item[0][0]]
    for (file, line, name), (_, calls, _, cumtime, _) in sorted(product, key=lambda i: i[1][3], reverse=True)[:10]:
        print(f"    {cumtime / batches * 1000:6.1f} ms  {calls // batches:6d} calls  {name}  ({_short(file)}:{line})")


def _short(file: str) -> str:
    """A profiled function's file, relative to site-packages or to the repository."""
    if "site-packages/" in file:
        return file.split("site-packages/")[-1]
    return file.removeprefix(f"{ROOT}/")


class HttpConnections:
    """The local mode's @connections server on a loopback port, for `--poster http`."""

    def __init__(self, subscriptions: dict[str, set[str]]) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        from cmlcm_local.runtime import free_port

        self.received: dict[str, list[bytes]] = {}

        async def post(request: Request) -> Response:
            self.received.setdefault(request.path_params["cid"], []).append(await request.body())
            return Response(status_code=200)

        app = Starlette(routes=[Route("/@connections/{cid}", post, methods=["POST"])])
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        assert self.thread.ident is not None
        self._clock = time.pthread_getcpuclockid(self.thread.ident)

    def cpu(self) -> float:
        """CPU seconds the server's thread (event loop, HTTP parsing, the route) has used."""
        return time.clock_gettime(self._clock)

    def stop(self) -> None:
        self.server.should_exit = True


def _worker(index: int) -> Worker:
    return Worker(
        worker_id=f"w-{index:04d}",
        name=f"cml-{index:04d}",
        region="us-east-1",
        instance_id=f"i-{index:017x}",
        status=WorkerStatus.RUNNING,
        created_at=T0,
        updated_at=T0,
        status_changed_at=T0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=3, help="collection cycles (one 100-record batch each)")
    parser.add_argument("--poster", choices=("memory", "http"), default="memory")
    parser.add_argument("--profile", action="store_true", help="cProfile the broadcaster's threads")
    parser.add_argument(
        "--bus-rules",
        action="store_true",
        help="give the bus the local mode's rules (moto then delivers to their targets inside PutEvents; "
        "EventBridge does that after PutEvents answers)",
    )
    args = parser.parse_args()

    with mock_aws():
        moto_glue.install(speedups=True)  # a benchmark measures the product, not moto's scans
        settings = fresh_backend()
        create_realtime_tables(settings.connections_table, settings.subscriptions_table, settings.aws_region)
        enable_streams([settings.workers_table], settings.aws_region)
        repo = DynamoWorkerRepository(settings.workers_table, settings.aws_region)
        workers = [repo.add(_worker(i)) for i in range(WORKERS)]
        store = DynamoConnectionStore(settings.connections_table, settings.subscriptions_table, settings.aws_region)
        subscriptions: dict[str, set[str]] = {}
        for index in range(CONNECTIONS):
            cid = f"c-{index:04d}"
            topics = [worker_topic(workers[index % WORKERS].worker_id)]
            if index < FLEET_WATCHERS:
                topics.append(FLEET_TOPIC)
            connection = realtime.connect(store, cid, user=None, role="viewer", now=T0)
            store.subscribe(connection, topics, limit=100)
            subscriptions[cid] = set(topics)

        http = None
        if args.poster == "http":
            http = HttpConnections(subscriptions)
            poster: Any = ApiGatewayConnections(f"http://127.0.0.1:{http.port}", settings.aws_region)
            # moto intercepts every botocore request; let this one through to the loopback server.
            os.environ["MOTO_CALL_RESET_API"] = "false"
        else:
            poster = MemoryConnections()
        local_bus = LocalEventBus(settings.aws_region, "cmlcm-bench-events")
        if not args.bus_rules:
            local_bus.rules = {}  # the bus alone: rule delivery is EventBridge's work, after PutEvents
        local_bus.create()
        bus = EventBridgeBus(local_bus.bus_name, settings.aws_region)
        container.use(current().with_ports(connections=store, poster=poster, bus=bus))
        timings: list[tuple[int, float, dict[str, float]]] = []
        batches: list[int] = []
        profiles = ThreadProfiles() if args.profile else None
        moto_cpu = MotoCpu(profiles)

        def timed(event: dict[str, Any], context: Any) -> dict[str, Any]:
            moto_before, gateway_before = moto_cpu.seconds, http.cpu() if http else 0.0
            operations_before = dict(moto_cpu.by_operation)
            cpu_before, started = time.process_time(), time.perf_counter()
            if profiles:
                profiles.enable_main(True)
            result = broadcaster.handler(event, context)
            if profiles:
                profiles.enable_main(False)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
            moto = moto_cpu.seconds - moto_before
            gateway = (http.cpu() - gateway_before) if http else 0.0
            split = {"cpu": cpu, "moto": moto, "gateway": gateway, "own": cpu - moto - gateway}
            for operation, seconds in moto_cpu.by_operation.items():
                split[f"moto {operation.split('.')[-1]}"] = seconds - operations_before.get(operation, 0.0)
            timings.append((len(event["Records"]), wall, split))
            return result

        pump = StreamPump(
            timed, [settings.workers_table], operations_table=settings.operations_table, region=settings.aws_region
        )
        pump.start()
        pump.stop()  # driven by hand below, one GetRecords per cycle

        print(
            f"broadcast fan-out: {CONNECTIONS} connections, {WORKERS} workers, each connection on one worker, "
            f"{FLEET_WATCHERS} also on fleet; poster: {args.poster}"
        )
        totals: Counter[str] = Counter()
        for cycle in range(1, args.cycles + 1):
            now = T0 + timedelta(minutes=cycle)
            changed = [
                w.model_copy(
                    update={
                        "metrics": WorkerMetrics(
                            collected_at=now, cpu_percent=float(cycle * 7 % 100), labs_running=cycle
                        ),
                        "updated_at": now,
                    }
                )
                for w in workers
            ]
            workers, failed = repo.save_many(changed)
            assert not failed
            workers.sort(key=lambda w: w.worker_id)
            calls_before, puts_before, entries_before = poster.calls, bus.calls, bus.entries
            with DynamoCounter() as dynamo:
                delivered = pump.pump_once()
            records, seconds, split = timings[-1]
            batches.append(records)
            posts = poster.calls - calls_before
            totals["posts"] += posts
            totals["queries"] += dynamo.ops["Query"]
            totals["reads"] += sum(n for op, n in dynamo.ops.items() if op in READ_OPS)
            totals["put_events"] += bus.calls - puts_before
            totals["entries"] += bus.entries - entries_before
            print(
                f"  cycle {cycle}: {delivered} stream records in {len(batches[-1:])} batch, broadcaster "
                f"{seconds * 1000:.0f} ms wall, CPU {split['cpu'] * 1000:.0f} ms = moto {split['moto'] * 1000:.0f}"
                f" + local @connections server {split['gateway'] * 1000:.0f} + broadcaster's own "
                f"{split['own'] * 1000:.0f}; {posts} PostToConnection calls, {dynamo.ops['Query']} subscription "
                f"Queries, {sum(n for op, n in dynamo.ops.items() if op in READ_OPS)} DynamoDB reads, "
                f"{bus.calls - puts_before} PutEvents calls ({bus.entries - entries_before} entries); moto by call: "
                + ", ".join(
                    f"{k[5:]} {v * 1000:.0f} ms" for k, v in split.items() if k.startswith("moto ") and v >= 0.0005
                )
            )

        received = poster.sent if args.poster == "memory" else http.received  # type: ignore[union-attr]
        messages = sum(len(m) for m in received.values())
        to_non_subscribers = 0
        topics_seen: Counter[str] = Counter()
        for cid, payloads in received.items():
            for payload in payloads:
                topic = json.loads(payload)["topic"]
                topics_seen[topic.split("/")[0]] += 1
                if topic not in subscriptions[cid]:
                    to_non_subscribers += 1
        events = WORKERS * args.cycles
        broadcast_all = events * CONNECTIONS
        walls = sorted(t[1] for t in timings)
        on_bus = local_bus.events() if args.bus_rules else []
        print()
        print(f"events (worker.changed, one per worker per cycle): {events}")
        print(f"messages sent:                           {messages}")
        print(f"  by topic: {dict(topics_seen)}")
        print(f"messages a broadcast-to-all design sends: {broadcast_all}  ({broadcast_all / max(messages, 1):.0f}x)")
        print(f"messages to non-subscribers:             {to_non_subscribers}")
        print(f"PostToConnection calls:                  {totals['posts']}")
        print(
            f"subscription Queries:                    {totals['queries']} ({totals['queries'] // args.cycles} a cycle: one per affected topic)"
        )
        print(f"DynamoDB reads:                          {totals['reads']} (Scans: 0)")
        print(
            f"PutEvents calls:                         {totals['put_events']} ({totals['entries']} entries"
            + (f", {len(on_bus)} delivered by the bus's catch-all rule)" if args.bus_rules else ")")
        )
        print(
            f"broadcaster wall time per {batches[0]}-record batch: "
            + ", ".join(f"{w * 1000:.0f} ms" for w in (t[1] for t in timings))
            + f" (median {walls[len(walls) // 2] * 1000:.0f} ms)"
        )
        print(
            "  CPU per batch (moto + local @connections server + broadcaster's own): "
            + ", ".join(
                f"{t[2]['cpu'] * 1000:.0f} ms ({t[2]['moto'] * 1000:.0f} + {t[2]['gateway'] * 1000:.0f} + "
                f"{t[2]['own'] * 1000:.0f})"
                for t in timings
            )
        )
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        moto_cpu.restore()
        if profiles:
            print_profile(profiles.stats(), len(timings))
        container.use(None)
        if http is not None:
            http.stop()


if __name__ == "__main__":
    main()
