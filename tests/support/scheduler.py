"""A controllable asyncio scheduler for searching interleavings.

`ShuffledLoop` runs the ordinary selector loop, but every callback made ready goes to a position
in the ready queue chosen by a seeded RNG, so tasks that are runnable at the same time run in a
random (and, for one seed, repeatable) order. Work handed to a thread (`to_thread`,
`run_in_executor`) runs inline, so no thread's timing makes a schedule unrepeatable. After every
callback the loop calls `after_step`, where a test checks its invariants.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import random
from asyncio import events
from collections.abc import Callable
from typing import Any


class Violation(AssertionError):
    """An invariant failed; raised out of the loop at the step that broke it."""


class _Step(events.Handle):
    __slots__ = ()

    def _run(self) -> None:
        super()._run()
        loop = self._loop
        assert isinstance(loop, ShuffledLoop)
        loop.steps += 1
        if loop.after_step is not None and loop.violation is None:
            try:
                loop.after_step()
            except Violation as exc:
                loop.violation = exc
                loop.stop()


class ShuffledLoop(asyncio.SelectorEventLoop):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.steps = 0
        self.after_step: Callable[[], None] | None = None
        self.violation: Violation | None = None

    def _call_soon(self, callback: Callable[..., Any], args: Any, context: Any) -> events.Handle:  # type: ignore[override]
        handle = _Step(callback, args, self, context)
        self._ready.insert(self.rng.randint(0, len(self._ready)), handle)  # type: ignore[attr-defined]
        return handle

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future = self.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as exc:  # handed to the awaiting task, as a thread's error would be
            future.set_exception(exc)
        return future

    async def yields(self, most: int) -> None:
        """Give others up to `most` chances to run here: an await point of random length."""
        for _ in range(self.rng.randint(0, most)):
            await asyncio.sleep(0)

    def run_schedule(self, main: Callable[[], Any]) -> None:
        """Run `main()` to the end, raising the first invariant violation at the step it happened."""
        task = self.create_task(main(), context=contextvars.copy_context())
        try:
            self.run_until_complete(task)
        except RuntimeError:
            if self.violation is None:
                raise
        if self.violation is not None:
            raise self.violation
        task.result()

    def close(self) -> None:
        for task in asyncio.all_tasks(self):
            task.cancel()
        self.after_step = None
        if asyncio.all_tasks(self):
            self.run_until_complete(asyncio.gather(*asyncio.all_tasks(self), return_exceptions=True))
        super().close()


class InlineExecutor(concurrent.futures.Executor):
    """An executor whose jobs run at once, in the caller: threads made repeatable."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future
