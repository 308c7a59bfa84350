"""Where a sweep's combinations run: this process, local worker processes, or a Ray cluster.

Every executor runs the same `jobs.evaluate` on the same `SweepData`, so the rows do not depend
on where they ran. The data goes to each worker once (fork inheritance locally, Ray's object store
on a cluster), never once per combination. Locally, `--workers N` is this process and N − 1
forked workers.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing import connection
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from ..errors import InputError
from .jobs import Job, Row, SweepData, evaluate


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
    """This process and N − 1 forked workers, each on its own pipe. The workers inherit the data
    and the compiled kernels with the fork; this process runs combinations too and, between two of
    them, collects the workers' rows and hands out the next chunks, so N busy processes share N
    cores (a parent that only collected would be an (N + 1)th process taking turns with them).
    The chunks go out and the rows come back on this process's own thread: an executor's helper
    threads each waited for the interpreter lock while this process computed, and the first chunk
    reached its worker tens of milliseconds late."""

    def __init__(self, shared: SweepData, workers: int) -> None:
        self.shared, self.workers = shared, workers
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        self.queued: dict[Connection, int] = {}  # chunks sent to a worker and not yet answered

    def _fork(self) -> None:
        ctx = multiprocessing.get_context("fork")
        for _ in range(self.workers - 1):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(self.shared, theirs), daemon=True)
            proc.start()
            theirs.close()
            self.pipes.append(mine)
            self.procs.append(proc)
            self.queued[mine] = 0

    def run(self, jobs: Sequence[Job]) -> Iterator[Row]:
        """Two chunks queued per worker; this process takes the next chunk itself, one
        combination at a time, collecting and handing out between them. A combination takes a few
        milliseconds, and one task per combination left the workers waiting on the queue (two
        workers were slower than one). A chunk's rows arrive together; Ctrl-C loses the workers'
        chunks under way."""
        chunks = deque(guided_chunks(list(jobs), self.workers))
        if chunks and not self.procs:
            # one combination before the fork: the workers inherit this process's caches of the
            # span (its simulator tape, features, windows) as shared memory pages
            first = chunks.popleft()
            yield evaluate(self.shared, first[0])
            if first[1:]:
                chunks.appendleft(first[1:])
            self._fork()

        def feed() -> Iterator[Row]:
            for pipe in self.pipes:
                while self.queued[pipe] and pipe.poll():
                    yield from self._answer(pipe)
                while self.queued[pipe] < 2 and chunks:
                    pipe.send(chunks.popleft())
                    self.queued[pipe] += 1

        yield from feed()
        while chunks:
            for job in chunks.popleft():
                yield evaluate(self.shared, job)
                yield from feed()
        while any(self.queued.values()):
            for pipe in connection.wait([p for p in self.pipes if self.queued[p]]):
                yield from self._answer(pipe)  # type: ignore[arg-type]

    def _answer(self, pipe: Connection) -> list[Row]:
        try:
            kind, got = pipe.recv()
        except EOFError:
            raise RuntimeError("a sweep worker process exited unexpectedly") from None
        self.queued[pipe] -= 1
        if kind == "error":
            raise got
        return got  # type: ignore[no-any-return]

    def close(self) -> None:
        """Workers with chunks under way are stopped (their rows are not wanted); idle ones are
        told to exit."""
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            if self.queued[pipe] or not proc.is_alive():
                proc.terminate()
            else:
                pipe.send(None)
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            proc.join()
            pipe.close()
        self.pipes, self.procs, self.queued = [], [], {}


def _serve(shared: SweepData, pipe: Connection) -> None:
    """A worker: chunks of combinations in, their rows (or the error that stopped one, which the
    parent raises) out, until told to stop or the parent is gone. Ctrl-C is the parent's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            chunk = pipe.recv()
        except EOFError:
            return
        if chunk is None:
            return
        try:
            answer: tuple[str, Any] = ("rows", [evaluate(shared, job) for job in chunk])
        except Exception as exc:  # not swallowed: the parent raises it
            answer = ("error", exc)
        try:
            pipe.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # unpicklable
            what = repr(answer[1]) if answer[0] == "error" else "a chunk's rows"
            pipe.send(("error", RuntimeError(f"{what} could not be sent back: {exc}")))


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
