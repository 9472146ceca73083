"""The figures of the benchmark, each a function ``(quick, repeats) -> Figure``.

Sizes: the full run uses the sizes the targets name; ``--quick`` uses small ones
so that a smoke test can run the whole benchmark in well under a minute.
"""

from __future__ import annotations

from collections.abc import Callable

from bench import coldstart, decisions, fold
from bench.common import Figure, Series, paired


def decisions_figure(quick: bool, repeats: int) -> Figure:
    count = 150 if quick else 1000
    blocks = 20
    figure = Figure(
        figure="decisions recorded per second, one durable commit each (SQLite, WAL, synchronous=FULL)",
        unit="decisions/s",
        higher_is_better=True,
        govflow=Series("govflow"),
        peers=[Series("eventsourcing"), Series("SpiffWorkflow")],
        limit=Series("sqlite3 insert, one commit each"),
        target="≥ 60% of the limit, ahead of both peers",
    )
    assert figure.limit is not None
    for _ in range(repeats):
        ours, theirs, spiff, raw = decisions.measure(count, blocks)
        figure.govflow.values.append(ours)
        figure.peers[0].values.append(theirs)
        figure.peers[1].values.append(spiff)
        figure.limit.values.append(raw)
    figure.notes = (
        f"{decisions.environment_note()}; the four take turns, {blocks} blocks of decisions each per repeat; "
        f"{paired(figure.govflow.values, figure.peers[0].values, 'govflow / eventsourcing')}"
    )
    return figure


def fold_figure(quick: bool, repeats: int) -> Figure:
    instances = 500 if quick else 10_000
    figure = Figure(
        figure=f"load and fold {instances:,} LIS instances (each walked to drafting)",
        unit="instances/s",
        higher_is_better=True,
        govflow=Series("govflow"),
        peers=[Series("SpiffWorkflow deserialise")],
        target="10,000 in under 2 s (≥ 5,000/s), ahead of SpiffWorkflow, < 20 KiB per instance",
    )
    memory = Series("bytes retained per instance")
    for _ in range(repeats):
        folded, per_instance, peer = fold.measure(instances)
        figure.govflow.values.append(folded)
        figure.peers[0].values.append(peer)
        memory.values.append(per_instance)
    figure.notes = f"memory per loaded instance: {memory.median / 1024:.1f} KiB (median)"
    return figure


def coldstart_figure(quick: bool, repeats: int) -> Figure:
    runs = 3 if quick else 10
    figure = Figure(
        figure="`govflow status` cold start (a new process)",
        unit="seconds",
        higher_is_better=False,
        govflow=Series("govflow status"),
        limit=Series("python -c pass"),
        target="within 0.25 s of `python -c pass`",
    )
    assert figure.limit is not None
    for _ in range(repeats):
        status, bare = coldstart.measure(runs)
        figure.govflow.values.append(sorted(status)[len(status) // 2])
        figure.limit.values.append(sorted(bare)[len(bare) // 2])
    overhead = figure.govflow.median - figure.limit.median
    figure.notes = f"govflow adds {overhead * 1000:.0f} ms to a bare interpreter (median)"
    return figure


def audit_figures(quick: bool, repeats: int) -> list[Figure]:
    from bench import audit_bench

    return audit_bench.measure(5_000 if quick else 100_000, repeats)


def memory_figure(quick: bool, repeats: int) -> Figure:
    from bench import audit_bench, memory
    from bench.common import scratch

    total = 20_000 if quick else 1_000_000
    figure = Figure(
        figure=f"peak memory replaying {total:,} events (every instance folded)",
        unit="MiB",
        higher_is_better=False,
        govflow=Series("govflow replay, peak RSS"),
        limit=Series("the same imports, no replay"),
        target="constant memory: under 200 MB peak",
    )
    assert figure.limit is not None
    with scratch("memory") as folder:
        url = audit_bench.build(folder, total)[0]
        for _ in range(max(1, repeats // 2)):
            replayed, bare = memory.measure(url)
            figure.govflow.values.append(replayed["peak_mib"])
            figure.limit.values.append(bare["peak_mib"])
    figure.notes = f"{replayed['events']:,} events of {replayed['instances']:,} instances folded"
    return figure


def import_figure(quick: bool, repeats: int) -> Figure:
    from bench import import_bench

    return import_bench.measure(2_000 if quick else 50_000, repeats)


def worker_figures(quick: bool, repeats: int) -> list[Figure]:
    from bench import worker_bench

    instances, due = (500, 50) if quick else (10_000, 1_000)
    return worker_bench.measure(lambda folder: f"sqlite:///{folder / 'worker.db'}", instances, due, repeats, "SQLite")


POSTGRES_ENV = "GOVFLOW_TEST_POSTGRES_URL"
postgres_server: str | None = None
"""The server of the PostgreSQL figures (``run.py --postgres URL``); else ``GOVFLOW_TEST_POSTGRES_URL``."""


def _postgres_server() -> str | None:
    import os

    return postgres_server or os.environ.get(POSTGRES_ENV)


def postgres_decisions(quick: bool, repeats: int) -> list[Figure]:
    """Only when a PostgreSQL server is given; none otherwise (and so for the groups below)."""
    server = _postgres_server()
    if not server:
        return []
    from bench import postgres_bench

    return postgres_bench.measure_decisions(server, quick, repeats)


def postgres_audit(quick: bool, repeats: int) -> list[Figure]:
    server = _postgres_server()
    if not server:
        return []
    from bench import postgres_bench

    return postgres_bench.measure_audit(server, quick, repeats)


def postgres_worker(quick: bool, repeats: int) -> list[Figure]:
    server = _postgres_server()
    if not server:
        return []
    from bench import postgres_bench

    return postgres_bench.measure_worker(server, quick, repeats)


FIGURES: dict[str, Callable[[bool, int], Figure | list[Figure]]] = {
    "decisions": decisions_figure,
    "fold": fold_figure,
    "coldstart": coldstart_figure,
    "audit": audit_figures,
    "memory": memory_figure,
    "import": import_figure,
    "worker": worker_figures,
    "postgres-decisions": postgres_decisions,
    "postgres-audit": postgres_audit,
    "postgres-worker": postgres_worker,
}
GROUPS: dict[str, tuple[str, ...]] = {"postgres": ("postgres-decisions", "postgres-audit", "postgres-worker")}
"""Names that stand for several figures in ``run.py --only``."""
