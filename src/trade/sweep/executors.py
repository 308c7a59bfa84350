"""Where a sweep's combinations run: this process, local worker processes, or a Ray cluster.

Every executor runs the same `jobs.evaluate` on the same `SweepData`, so the rows do not depend
on where they ran. The data goes to each worker once (fork inheritance locally, Ray's object store
on a cluster), never once per combination. Locally, `--workers N` is this process and N − 1
forked workers.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from ..errors import InputError
from .jobs import Job, Row, SweepData, evaluate, evaluate_chunk_in_worker, init_worker


class Executor(Protocol):
    def run(self, jobs: Sequence[Job]) -> Iterator[Row]:
        """Rows as they complete (any order)."""
        ...

    def close(self) -> None: ...


class InProcess:
    def __init__(self, shared: SweepData) -> None:
        self.shared = shared

    def run(self, jobs: Sequence[Job]) -> Iterator[Row]:
        for job in jobs:
            yield evaluate(self.shared, job)

    def close(self) -> None:
        pass


MAX_CHUNK = 16  # combinations per task, at most


def guided_chunks(jobs: list[Job], workers: int) -> list[list[Job]]:
    """Chunks that shrink as the work left does (a share of it per worker, at most `MAX_CHUNK`),
    so the workers finish together: the last chunks are single combinations."""
    out, i = [], 0
    while i < len(jobs):
        size = max(1, min(MAX_CHUNK, (len(jobs) - i) // (4 * workers)))
        out.append(jobs[i : i + size])
        i += size
    return out


class LocalProcesses:
    """This process and N − 1 forked workers. The workers inherit the data and compile nothing
    (the parent's kernels come with the fork); this process runs combinations too between handing
    chunks out and collecting rows, so N busy processes share N cores (a parent that only
    collected would be an (N + 1)th process taking turns with them)."""

    def __init__(self, shared: SweepData, workers: int) -> None:
        self.shared, self.workers = shared, workers
        self.started = False  # the workers are forked at the first chunk handed out
        self.pool = ProcessPoolExecutor(
            max_workers=workers - 1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=init_worker,
            initargs=(shared,),
        )

    def run(self, jobs: Sequence[Job]) -> Iterator[Row]:
        """Chunks go to the workers, two queued per worker, and this process takes the next
        chunk itself, one combination at a time, checking the workers' chunks between them: a
        combination takes a few milliseconds, and one task per combination left the workers
        waiting on the queue (two workers were slower than one). A chunk's rows arrive together;
        Ctrl-C loses the workers' chunks under way."""
        chunks = deque(guided_chunks(list(jobs), self.workers))
        pending: set[Future[list[Row]]] = set()
        limit = 2 * (self.workers - 1)

        def feed() -> Iterator[Row]:
            finished = {f for f in pending if f.done()}
            pending.difference_update(finished)
            for f in finished:
                yield from f.result()
            while len(pending) < limit and chunks:
                pending.add(self.pool.submit(evaluate_chunk_in_worker, chunks.popleft()))

        if chunks and not self.started:
            # one combination before the first fork: the workers inherit this process's caches
            # of the span (its simulator tape, features, windows) as shared memory pages
            first = chunks.popleft()
            yield evaluate(self.shared, first[0])
            if first[1:]:
                chunks.appendleft(first[1:])
            self.started = True
        yield from feed()
        while chunks:
            for job in chunks.popleft():
                yield evaluate(self.shared, job)
                yield from feed()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            pending.difference_update(done)
            for f in done:
                yield from f.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayCluster:
    """Ray tasks on the cluster at `address` (`auto`: the configured or a new local one)."""

    def __init__(self, shared: SweepData, address: str) -> None:
        try:
            import ray
        except ImportError:
            raise InputError(
                "--ray needs Ray, an optional extra: pip install 'trade[ray]'"
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            if address != "auto":
                _probe(address)
            try:
                if address == "auto":
                    ray.init(logging_level="ERROR", log_to_driver=False)
                else:
                    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(f"--ray {address}: cannot reach a Ray cluster ({first})") from None
        self.shared_ref = ray.put(shared)  # shipped once; tasks receive it by reference
        self.task = ray.remote(_ray_evaluate)

    def run(self, jobs: Sequence[Job]) -> Iterator[Row]:
        ray = self.ray
        todo = iter(jobs)
        pending: list[Any] = []
        limit = 4 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        while True:
            while len(pending) < limit:
                job = next(todo, None)
                if job is None:
                    break
                pending.append(self.task.remote(self.shared_ref, job))
            if not pending:
                return
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)

    def close(self) -> None:
        pass


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Refuse at once an address where nothing listens (Ray itself retries for minutes)."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InputError(f"--ray {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise InputError(
            f"--ray {address}: cannot reach a Ray cluster ({exc.strerror or exc})"
        ) from None


def _ray_evaluate(shared: SweepData, job: Job) -> Row:
    return evaluate(shared, job)


def make_executor(shared: SweepData, workers: int, ray_address: str | None) -> Executor:
    if workers < 1:
        raise InputError(f"--workers {workers}: expected 1 or more")
    if ray_address is not None:
        return RayCluster(shared, ray_address)
    if workers == 1:
        return InProcess(shared)
    return LocalProcesses(shared, workers)
