"""Parallel test workers forked from one warmed process: `pytest --forked-workers N`.

pytest-xdist starts every worker as a fresh interpreter, and each one imports the SDKs, collects the
whole suite and makes the shared offline runs again before its first test: on 2 cores that was a
tenth of `make test`. Here the process that collected the suite warms up (the hook
`pytest_forked_workers_warm`: conftest makes the shipped stacks' runs there) and forks the workers,
which inherit all of it. So that no core waits for the warm-up, one worker is forked before it, for
the files the warm-up does nothing for (the hook `pytest_forked_workers_cold`): it runs only those,
and when none is left it stops and a worker forked from the warmed process takes its place. Work is
handed out a test file at a time (module fixtures are built once), in collection order, to whichever
worker asks next; a worker asks for its next file before it runs the last test of the current one, so
module fixtures are torn down where pytest would tear them down.

Workers run the tests and send every report back; this process turns them into the usual terminal
output, counts and exit status. A worker that dies, or is killed for running one test longer than
`--forked-worker-timeout` (after printing every thread's stack), is reported as one failed test naming
what it was running; the files it had not begun go to the others, a new worker takes its place, and
the run ends "Interrupted" with the count of tests that did not run. Standard library and pytest's
own hooks only; off (plain pytest) unless the option is given, and on `--collect-only`.
"""
from __future__ import annotations

import faulthandler
import os
import pickle
import selectors
import signal
import struct
import sys
import threading
import time
import warnings
from collections import OrderedDict
from typing import Any

import pytest

_HEADER = struct.Struct("!I")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--forked-workers",
        type=int,
        default=0,
        metavar="N",
        help="run the tests in N worker processes forked after collection (0 or 1: in this process)",
    )
    parser.addoption(
        "--forked-worker-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="a worker still in one test after SECONDS prints every thread's stack and is killed: that "
        "test fails and the others go on (0: no limit)",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_Hooks)


class _Hooks:
    @pytest.hookspec
    def pytest_forked_workers_warm(self, session: pytest.Session) -> None:
        """Called once before the workers are forked: what is made here, every worker has."""

    @pytest.hookspec(firstresult=True)
    def pytest_forked_workers_cold(self, session: pytest.Session, path: Any) -> bool | None:
        """True if the tests of this file (a `pathlib.Path`) gain nothing from the warm-up: the
        worker forked before it may run them. No answer means they need it."""


# Files handed to the worker forked before the warm-up, before it first asks for more: the parent
# answers no request while it warms up (a few seconds), and one file might end sooner.
_EARLY_FILES = 2


# --------------------------------------------------------------------------------------- framing
def _send(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    """The next message, or None when the other end closed."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(fd, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


# ---------------------------------------------------------------------------------------- worker
class _Forwarder:
    """The worker's reporting: every report goes to the parent instead of a terminal."""

    def __init__(self, config: pytest.Config, fd: int) -> None:
        self.config = config
        self.fd = fd
        # pluggy replays every historic call made so far to a plugin as it is registered: the
        # warnings this worker inherited (config, collection, and those the parent has forwarded
        # from other workers before this one was forked) are the parent's already.
        self.registered = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        _send(self.fd, ("logstart", nodeid, location))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: tuple) -> None:
        _send(self.fd, ("logfinish", nodeid, location))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        _send(self.fd, ("report", data))

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str, location: Any) -> None:
        if not self.registered:
            return
        w = warning_message
        _send(self.fd, ("warning", str(w.message), w.category.__name__, w.filename, w.lineno, when, nodeid))


def _worker(
    session: pytest.Session, groups: list[list[pytest.Item]], to_parent: int, from_parent: int, first: list[int]
) -> None:
    config = session.config
    # The terminal belongs to the parent; this process's output is captured per test as usual, in
    # capture files of its own (the inherited ones are shared with the parent and the other workers).
    config.pluginmanager.unregister(name="terminalreporter")
    forwarder = _Forwarder(config, to_parent)
    config.pluginmanager.register(forwarder, "forked-worker-forwarder")
    forwarder.registered = True
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None and capman.is_globally_capturing():
        capman.stop_global_capturing()
        stderr = os.fdopen(os.dup(2), "w")  # the terminal's, not a test's capture
        capman.start_global_capturing()
        capman.suspend_global_capture()
    else:
        stderr = os.fdopen(os.dup(2), "w")
    # The parent enforces --forked-worker-timeout: it asks for the stacks with this signal, then
    # kills the worker. A signal handler, not faulthandler's watchdog thread: a worker's tests fork
    # (the warm runner), and the warm runner waits for its own threads to be gone before it does.
    faulthandler.register(signal.SIGUSR1, file=stderr, all_threads=True)
    # A loop of its own: the inherited one's selector and self-pipe are shared with the other workers.
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())

    assigned = list(first)

    def next_group() -> list[pytest.Item] | None:
        if assigned:
            return groups[assigned.pop(0)]
        _send(to_parent, ("next",))
        index = _receive(from_parent)
        return None if index is None else groups[index]

    current = next_group()
    while current is not None:
        following: list[pytest.Item] | None = None
        for position, item in enumerate(current):
            if position + 1 < len(current):
                nextitem: pytest.Item | None = current[position + 1]
            else:
                following = None if session.shouldfail or session.shouldstop else next_group()
                nextitem = following[0] if following else None
            # When it began, by the clock every process shares (the parent may read this late).
            _send(to_parent, ("running", item.nodeid, time.monotonic()))
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail or session.shouldstop:
                following = None
                break
        current = following
    _send(to_parent, ("done",))


# ---------------------------------------------------------------------------------------- parent
def _file_groups(items: list[pytest.Item]) -> list[list[pytest.Item]]:
    groups: OrderedDict[str, list[pytest.Item]] = OrderedDict()
    for item in items:
        groups.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    return list(groups.values())


def _crash_report(session: pytest.Session, nodeid: str, item: pytest.Item | None, why: str) -> None:
    location = item.location if item is not None else (nodeid, None, nodeid)
    report = pytest.TestReport(
        nodeid=nodeid,
        location=location,
        keywords={},
        outcome="failed",
        longrepr=f"forked test worker died while running this test: {why}",
        when="call",
    )
    session.config.hook.pytest_runtest_logreport(report=report)


def _handle(session: pytest.Session, running: dict[int, str | None], pid: int, message: tuple) -> None:
    """One report (or progress line, or warning) from a worker, into this process's hooks."""
    hook = session.config.hook
    kind = message[0]
    if kind == "running":
        running[pid] = message[1]
    elif kind == "report":
        report = hook.pytest_report_from_serializable(config=session.config, data=message[1])
        hook.pytest_runtest_logreport(report=report)
    elif kind == "logstart":
        hook.pytest_runtest_logstart(nodeid=message[1], location=message[2])
    elif kind == "logfinish":
        running[pid] = None
        hook.pytest_runtest_logfinish(nodeid=message[1], location=message[2])
    elif kind == "warning":
        _, text, category, filename, lineno, when, nodeid = message
        warning = warnings.WarningMessage(text, type(category, (Warning,), {}), filename, lineno)
        hook.pytest_warning_recorded.call_historic(
            kwargs={"warning_message": warning, "when": when, "nodeid": nodeid, "location": None}
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    workers = session.config.getoption("forked_workers")
    if workers <= 1 or session.config.option.collectonly or not session.items:
        return None
    if getattr(session.config.option, "numprocesses", None):
        raise pytest.UsageError("--forked-workers and pytest-xdist's -n are two ways to run in parallel: pick one")
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        return None  # pytest's own loop reports the collection errors
    groups = _file_groups(session.items)
    by_nodeid = {item.nodeid: item for item in session.items}
    session.config._tmp_path_factory.getbasetemp()  # one base for all workers, made before the fork
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if threading.active_count() > 1:
        # A fork copies only this thread: locks the others held would never be released in a worker.
        if reporter is not None:
            reporter.write_line("forked workers: other threads are running; tests run in this process")
        return None
    queue = list(range(len(groups)))  # files not handed out yet, in order
    hook = session.config.hook
    cold = {i for i in queue if hook.pytest_forked_workers_cold(session=session, path=groups[i][0].path)}
    children: dict[int, tuple[int, int]] = {}  # pid -> (read end of its reports, write end of its orders)
    started: set[str] = set()  # tests a worker began
    dead: list[str] = []
    early: set[int] = set()  # the worker forked before the warm-up
    given: dict[int, list[int]] = {}  # the files handed to each worker, in order

    def take(for_early: bool) -> int | None:
        """The next file to hand out (for the early worker, the next cold one), or None."""
        if session.shouldfail or session.shouldstop:
            return None
        for position, index in enumerate(queue):
            if not for_early or index in cold:
                return queue.pop(position)
        return None

    def spawn(first: list[int]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        up_read, up_write = os.pipe()
        down_read, down_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                os.close(up_read)
                os.close(down_write)
                for other_read, other_write in children.values():  # the other workers' pipes
                    os.close(other_read)
                    os.close(other_write)

                # A process this worker forks (a test's warm runner) must not hold its pipes open:
                # the parent learns of the worker's death by their end of file.
                def close_pipes() -> None:
                    for fd in (up_write, down_read):
                        try:
                            os.close(fd)
                        except OSError:
                            pass

                os.register_at_fork(after_in_child=close_pipes)
                _worker(session, groups, up_write, down_read, first)
            except BaseException:  # noqa: BLE001 - whatever happens, the parent hears of it by EOF
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        os.close(up_write)
        os.close(down_read)
        children[pid] = (up_read, down_write)
        given[pid] = list(first)
        return pid

    selector = selectors.DefaultSelector()
    running: dict[int, str | None] = {}
    since: dict[int, float] = {}  # when each worker began its current test
    limit = session.config.getoption("forked_worker_timeout")
    overdue: set[int] = set()  # workers killed for --forked-worker-timeout

    def kill_overdue() -> float | None:
        """Kill every worker whose current test has run past the limit (after asking for its
        stacks); the seconds until the next one would be due, or None."""
        if not limit:
            return None
        now = time.monotonic()
        due = None
        for pid, nodeid in running.items():
            if nodeid is None or pid in overdue or pid not in children:
                continue
            left = since[pid] + limit - now
            if left > 0:
                due = left if due is None else min(due, left)
                continue
            overdue.add(pid)
            if reporter is not None:
                reporter.write_line(f"forked workers: {nodeid} ran past {limit:g}s; its worker's stacks are on stderr")
            try:
                os.kill(pid, signal.SIGUSR1)  # faulthandler prints every thread's stack
                time.sleep(0.2)  # it writes them from the signal handler, at once
                os.kill(pid, signal.SIGKILL)  # its pipe closes: reaped as a crash
            except ProcessLookupError:
                pass
        return due

    def watch(pid: int) -> None:
        selector.register(children[pid][0], selectors.EVENT_READ, pid)
        running[pid] = None

    def reap(pid: int, crashed: bool) -> None:
        read_fd, write_fd = children.pop(pid)
        selector.unregister(read_fd)
        os.close(read_fd)
        os.close(write_fd)
        _, status = os.waitpid(pid, 0)
        if crashed:
            nodeid = running.get(pid) or f"<forked worker {pid}, between tests>"
            why = f"exit status {os.waitstatus_to_exitcode(status)}"
            if pid in overdue:
                why = f"no result after {limit:g}s (--forked-worker-timeout); its threads' stacks are above"
            _crash_report(session, nodeid, by_nodeid.get(nodeid), why)
            dead.append(nodeid)
        # Files it was given and had not begun go to the others (the rest of a file it began and
        # did not finish is counted as not run).
        queue[:0] = [i for i in given.pop(pid) if not any(item.nodeid in started for item in groups[i])]
        for state in (early, overdue):
            state.discard(pid)  # the kernel may give its pid to a later worker
        since.pop(pid, None)
        running.pop(pid, None)

    try:
        # While this process warms up, one worker runs files that do not need it.
        first = [index for index in (take(True) for _ in range(_EARLY_FILES)) if index is not None]
        if first:
            early.add(spawn(first))
        hook.pytest_forked_workers_warm(session=session)
        wanted = workers - len(early)
        may_fork = threading.active_count() == 1
        if not may_fork:
            # No more forks: the worker already running takes every file, or this process does.
            if reporter is not None:
                where = "one worker only" if early else "tests run in this process"
                reporter.write_line(f"forked workers: threads are running after the warm-up; {where}")
            if not early:
                return None
            early.clear()
            wanted = 0
        for _ in range(wanted):
            index = take(False)
            if index is None:
                break
            spawn([index])
        for pid in children:
            watch(pid)

        while selector.get_map():
            # Everything the workers have sent, before any request for more work is answered: a
            # failure under -x stops the hand-out before the next file goes out.
            requests: list[int] = []
            events = selector.select(timeout=kill_overdue())
            while events:
                for key, _ in events:
                    pid = key.data
                    if pid not in children:
                        continue
                    message = _receive(children[pid][0])
                    if message is None or message[0] == "done":
                        # Out of cold files, or dead after it began a test (one that dies before
                        # its first would die again in its replacement): a worker with the
                        # warm-up takes its place.
                        began = any(item.nodeid in started for i in given[pid] for item in groups[i])
                        replace = pid in early if message is not None else began
                        reap(pid, crashed=message is None)
                        requests = [r for r in requests if r != pid]
                        if replace and may_fork and threading.active_count() == 1:
                            index = take(False)
                            if index is not None:
                                watch(spawn([index]))
                    elif message[0] == "next":
                        requests.append(pid)  # it sends nothing more until answered
                    else:
                        if message[0] == "running":
                            started.add(message[1])
                            since[pid] = message[2]
                        _handle(session, running, pid, message)
                events = selector.select(timeout=0) if selector.get_map() else []
            for pid in requests:
                index = take(pid in early)
                try:
                    _send(children[pid][1], index)
                except BrokenPipeError:
                    if index is not None:
                        queue.insert(0, index)  # it died after asking: another worker takes this file
                    continue
                if index is not None:
                    given[pid].append(index)
    finally:
        # Whatever ended this loop early (an error in the warm-up, Ctrl-C), no worker outlives it.
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    not_run = len(session.items) - len(started)
    if dead:
        # The survivors took the other files; the tests after the crash in its file did not run.
        session.shouldstop = f"a test worker died running {', '.join(dead)}; {not_run} tests did not run"
    elif queue and not (session.shouldfail or session.shouldstop):
        session.shouldstop = f"no worker was left to run {len(queue)} files; {not_run} tests did not run"
    if session.shouldfail:
        raise session.Failed(session.shouldfail)
    if session.shouldstop:
        raise session.Interrupted(session.shouldstop)
    return True
