"""`pytest --forked-workers N` (tests/forked_workers.py), on small suites of its own in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from programs.offline import REPO_ROOT

WARM_CONFTEST = """
import os
import pytest

@pytest.hookimpl(optionalhook=True)
def pytest_forked_workers_warm(session):
    os.environ["WARMED_IN"] = str(os.getpid())
    with open("warm-hook.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")

@pytest.hookimpl(optionalhook=True)
def pytest_forked_workers_cold(session, path):
    return path.name in ("test_a.py", "test_b.py")

def record(name):
    with open(name, "a") as f:
        f.write(f"{os.getpid()} {os.environ.get('WARMED_IN', '-')}\\n")
"""


def run_suite(tmp_path: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    for name, body in files.items():
        (tmp_path / name).write_text(textwrap.dedent(body))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    # Only this plugin: autoloading the installed ones (xdist, hypothesis) cost ~0.45 s a suite.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.forked_workers", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def test_every_report_reaches_the_terminal_and_a_file_stays_in_one_worker(tmp_path):
    files = {
        "conftest.py": WARM_CONFTEST,
        # Cold (see the conftest): the worker forked before the warm-up runs both files, then stops.
        "test_a.py": """
            import warnings
            from conftest import record
            def test_pass(): record("cold.txt")
            def test_fail(): assert 1 + 1 == 3, "arithmetic"
            def test_warns(): warnings.warn("from a worker", UserWarning)
        """,
        "test_b.py": """
            import pytest
            from conftest import record
            @pytest.mark.parametrize("n", range(5))
            def test_many(n): print("noise from", n); record("cold.txt")
            @pytest.mark.skip(reason="not here")
            def test_skipped(): pass
        """,
        # These need the warm-up: workers forked after it run them. Each takes 0.1 s, so the second
        # worker is still busy with them when the first one's place is taken.
        **{
            f"test_w{i}.py": """
                import time
                from conftest import record
                def test_warm(): time.sleep(0.1); record("warm.txt")
            """
            for i in range(4)
        },
        "test_m.py": """
            import os, pytest
            built = []
            @pytest.fixture(scope="module")
            def shared():
                built.append(os.getpid())
                yield
                with open("teardowns.txt", "a") as f:
                    f.write(f"{len(built)}\\n")
            @pytest.mark.parametrize("n", range(6))
            def test_uses(shared, n): assert built == [os.getpid()]
        """,
    }
    proc = run_suite(tmp_path, files, "--forked-workers", "2", "-rfs")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 17 passed, 1 skipped, 1 warning" in proc.stdout  # the warning once
    assert "UserWarning: from a worker" in proc.stdout
    [hook_pid] = (tmp_path / "warm-hook.txt").read_text().split()
    cold = {tuple(line.split()) for line in (tmp_path / "cold.txt").read_text().splitlines()}
    warm = {tuple(line.split()) for line in (tmp_path / "warm.txt").read_text().splitlines()}
    # The cold files ran in one worker, forked before the warm-up (it has none of it)...
    [(early_pid, early_warmed)] = cold
    assert early_warmed == "-" and early_pid != hook_pid, cold
    # ...and the others in workers forked after it, in this process: the second worker and the one that
    # took the first one's place when it ran out of cold files.
    assert {warmed for _, warmed in warm} == {hook_pid}, warm
    assert len({pid for pid, _ in warm} - {early_pid, hook_pid}) == 2, warm
    assert "FAILED test_a.py::test_fail - AssertionError: arithmetic" in proc.stdout
    assert "assert (1 + 1) == 3" in proc.stdout  # the traceback, with pytest's assertion rewriting
    assert "SKIPPED [1] test_b.py" in proc.stdout and "not here" in proc.stdout
    assert "noise from" not in proc.stdout  # passing tests' output stays captured
    # The module fixture was built once, in the worker that ran all six tests, and torn down once.
    assert (tmp_path / "teardowns.txt").read_text().splitlines() == ["1"]


def test_a_worker_that_dies_is_one_failed_test_naming_it_and_the_others_go_on(tmp_path):
    files = {
        "test_crash.py": """
            import os
            def test_before(): pass
            def test_dies(): os._exit(3)
            def test_after(): pass
        """,
        # Both cold: the worker forked before the warm-up is given both and dies in the first; the
        # second goes to another worker.
        "conftest.py": """
            import pytest
            @pytest.hookimpl(optionalhook=True)
            def pytest_forked_workers_cold(session, path):
                return path.name in ("test_crash.py", "test_crash2.py") or None
        """,
        "test_crash2.py": "def test_given_to_the_dead_worker(): pass\n",
        "test_0hang.py": """
            import threading
            def test_hangs(): threading.Event().wait()
        """,
        **{f"test_fine{i}.py": "def test_fine(): pass\n" for i in range(6)},
    }
    proc = run_suite(tmp_path, files, "--forked-workers", "2", "--forked-worker-timeout", "0.5", "-rf")
    assert proc.returncode == 2, proc.stdout + proc.stderr  # interrupted: not every test ran
    assert "FAILED test_crash.py::test_dies" in proc.stdout
    assert "forked test worker died while running this test: exit status 3" in proc.stdout
    # A hung test is a failure too, after the limit, with the stack of where it waits. It is the
    # first file the other worker takes: both workers die, and only their replacements run the rest.
    assert "FAILED test_0hang.py::test_hangs" in proc.stdout
    assert "no result after 0.5s (--forked-worker-timeout)" in proc.stdout
    assert "test_0hang.py::test_hangs ran past 0.5s; its worker's stacks are on stderr" in proc.stdout
    assert 'test_0hang.py", line 3 in test_hangs' in proc.stderr
    assert "2 failed, 8 passed" in proc.stdout  # every other file ran, in the other workers
    assert "1 tests did not run" in proc.stdout


def test_workers_that_die_before_their_first_test_are_not_replaced_forever(tmp_path):
    files = {
        "conftest.py": """
            import os
            os.register_at_fork(after_in_child=lambda: os._exit(5))  # every worker dies at once
        """,
        "test_one.py": "def test_one(): pass\n",
        "test_two.py": "def test_two(): pass\n",
    }
    proc = run_suite(tmp_path, files, "--forked-workers", "2")
    assert proc.returncode == 2, proc.stdout + proc.stderr  # interrupted, and it ends
    assert "2 tests did not run" in proc.stdout, proc.stdout


def test_exit_first_stops_handing_out_files(tmp_path):
    # Each test takes 100 ms, several times what a failure's report takes to build: the other worker
    # is still on its first files when the failure reaches the parent.
    files = {f"test_{i:02d}.py": f"import time\ndef test_{i}(): time.sleep(0.1); assert {i} != 0\n" for i in range(40)}
    proc = run_suite(tmp_path, files, "--forked-workers", "2", "-x")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    passed = re.search(r"1 failed(?:, (\d+) passed)?", proc.stdout)
    # The files in flight when the failure is reported still run, not the other 30-odd.
    assert passed and int(passed[1] or 0) < 20, proc.stdout


def test_without_the_option_tests_run_in_the_pytest_process(tmp_path):
    files = {
        "conftest.py": """
            import os
            def pytest_sessionstart(session):
                open("session.pid", "w").write(str(os.getpid()))
        """,
        "test_pid.py": """
            import os
            def test_pid(): open("test.pid", "w").write(str(os.getpid()))
        """,
    }
    proc = run_suite(tmp_path, files)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert (tmp_path / "test.pid").read_text() == (tmp_path / "session.pid").read_text()
