"""Benchmark: the live-update fan-out of one collection cycle, against broadcast-to-all.

1000 WebSocket connections, 100 workers; each connection subscribed to one worker
(`workers/<id>`, 10 connections per worker) and 10 of them also to `fleet`. A collection cycle
changes all 100 workers (new metrics): the workers table's stream (moto's DynamoDB Streams,
NEW_AND_OLD_IMAGES, read with GetRecords as the local mode's pump does) yields a 100-record batch,
and the real broadcaster handler (Powertools batch parsing, image diff through the REST views,
coalescing, one subscriber Query per topic on moto's DynamoDB, concurrent posts) fans it out.

Prints messages sent, what broadcast-to-all would send, messages that reached a connection not
subscribed to their topic (must be 0), PostToConnection calls, subscription Queries, DynamoDB
reads, and the broadcaster's wall time per 100-record batch.

Posts go to an in-memory @connections twin by default (it records every message, so each
delivery is checked against the subscriptions); `--poster http` posts through the real boto3
`apigatewaymanagementapi` client to the local mode's @connections server over loopback HTTP
(each post is then one HTTP request: that is what costs the time).

    .venv/bin/python benchmarks/broadcast_fanout.py [--cycles 3] [--poster memory|http]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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

from cmlcm.adapters.connections_api import ApiGatewayConnections, MemoryConnections  # noqa: E402
from cmlcm.adapters.dynamo import DynamoWorkerRepository  # noqa: E402
from cmlcm.adapters.subscriptions import DynamoConnectionStore, create_realtime_tables  # noqa: E402
from cmlcm.domain.events import FLEET_TOPIC, worker_topic  # noqa: E402
from cmlcm.domain.workers import Worker, WorkerMetrics, WorkerStatus  # noqa: E402
from cmlcm.handlers import broadcaster  # noqa: E402
from cmlcm.services import realtime  # noqa: E402
from cmlcm_local import moto_ec2_glue, moto_glue  # noqa: E402
from cmlcm_local.seed import fresh_backend  # noqa: E402
from cmlcm_local.streams import StreamPump, enable_streams, install_iterator_glue  # noqa: E402

CONNECTIONS = 1000
WORKERS = 100
FLEET_WATCHERS = 10
READ_OPS = {"GetItem", "Query", "Scan", "BatchGetItem"}
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


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


class HttpConnections:
    """The local mode's @connections server on a loopback port, for `--poster http`."""

    def __init__(self, subscriptions: dict[str, set[str]]) -> None:
        import threading

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
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.02)

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
    args = parser.parse_args()

    with mock_aws():
        moto_glue.install()
        moto_ec2_glue.install()
        install_iterator_glue()
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
        broadcaster.override(realtime.RealtimePorts(connections=store, poster=poster))
        timings: list[tuple[int, float, Any]] = []
        batches: list[int] = []

        def timed(event: dict[str, Any], context: Any) -> dict[str, Any]:
            started = time.perf_counter()
            result = broadcaster.handler(event, context)
            timings.append((len(event["Records"]), time.perf_counter() - started, None))
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
            calls_before = poster.calls
            with DynamoCounter() as dynamo:
                delivered = pump.pump_once()
            records, seconds, _ = timings[-1]
            batches.append(records)
            posts = poster.calls - calls_before
            totals["posts"] += posts
            totals["queries"] += dynamo.ops["Query"]
            totals["reads"] += sum(n for op, n in dynamo.ops.items() if op in READ_OPS)
            print(
                f"  cycle {cycle}: {delivered} stream records in {len(batches[-1:])} batch, broadcaster "
                f"{seconds * 1000:.0f} ms wall, {posts} PostToConnection calls, {dynamo.ops['Query']} subscription "
                f"Queries, {sum(n for op, n in dynamo.ops.items() if op in READ_OPS)} DynamoDB reads"
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
            f"broadcaster wall time per {batches[0]}-record batch: "
            + ", ".join(f"{w * 1000:.0f} ms" for w in (t[1] for t in timings))
            + f" (median {walls[len(walls) // 2] * 1000:.0f} ms)"
        )
        broadcaster.override(None)
        if http is not None:
            http.stop()


if __name__ == "__main__":
    main()
