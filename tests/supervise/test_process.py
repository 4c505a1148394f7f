"""The upstream's process: its output line by line, its whole group stopped, clear errors; the watchdog."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from devhttps.base.errors import DevhttpsError
from devhttps.supervise import process
from devhttps.supervise.process import Child
from devhttps.supervise.watchdog import Watchdog
from tests.supervise.procs import alive, processes_with, sleeper


def _run(coro):
    return asyncio.run(coro)


def test_output_arrives_line_by_line_from_both_streams_long_lines_in_pieces(monkeypatch):
    monkeypatch.setattr(process, "LONGEST_LINE", 10)
    lines: list[tuple[str, str]] = []
    code = ("import sys; print('one'); print('two\\r'); print('x' * 25); sys.stderr.write('err\\n'); "
            "sys.stdout.write('the end')")

    async def main() -> int:
        child = Child([sys.executable, "-c", code], lambda s, line: lines.append((s, line)))
        await child.start()
        return await child.wait()

    assert _run(main()) == 0
    out = [line for s, line in lines if s == "stdout"]
    assert out == ["one", "two", "x" * 10, "x" * 10, "x" * 5, "the end"]
    assert ("stderr", "err") in lines


def test_a_python_command_that_prints_without_flush_is_seen_while_it_runs():
    code = "import os, time; print('up', os.environ.get('PYTHONUNBUFFERED')); time.sleep(300)"

    async def main(env: dict[str, str] | None) -> str:
        seen: asyncio.Queue[str] = asyncio.Queue()
        child = Child([sys.executable, "-c", code], lambda s, line: seen.put_nowait(line), env=env)
        await child.start()
        try:
            return await asyncio.wait_for(seen.get(), 20)  # buffered, it would come only at its exit
        finally:
            await child.stop(grace=1)

    unset = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    assert _run(main(unset)) == "up 1"
    assert _run(main({**unset, "PYTHONUNBUFFERED": "yes"})) == "up yes"  # the user's own setting stays


def test_stop_ends_the_whole_group_even_a_child_that_ignores_sigterm():
    mark = f"devhttps-test-{uuid.uuid4().hex}"
    # The command ignores SIGTERM and starts a grandchild: both must be gone after stop().
    code = (f"import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"subprocess.Popen({sleeper(mark)!r}); print('up', flush=True); time.sleep(300)")

    async def main() -> int:
        started = asyncio.Event()
        child = Child([sys.executable, "-c", code, mark], lambda s, line: started.set())
        await child.start()
        await asyncio.wait_for(started.wait(), 20)
        assert len(processes_with(mark)) == 2
        return await child.stop(grace=0.3)

    assert _run(main()) == -9  # SIGKILL after the grace: it ignored SIGTERM
    assert _gone(mark)


def test_what_the_command_started_finishes_its_cleanup_after_the_command_ends(tmp_path):
    cleaned = tmp_path / "cleaned"
    # A grandchild that takes a while to clean up after SIGTERM (vite under npm), under a command that ends at
    # once on SIGTERM: the grandchild must not be killed before its cleanup is done.
    grandchild = ("import os, signal, sys, time\n"
                  "def bye(*_):\n"
                  f"    time.sleep(1); open({str(cleaned)!r}, 'w').close(); sys.exit(0)\n"
                  "signal.signal(signal.SIGTERM, bye); print('ready', flush=True)\n"
                  "os.close(1); os.close(2); time.sleep(300)\n")  # (the pipes end with the command)
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(300)"

    async def main() -> int:
        ready = asyncio.Event()
        child = Child([sys.executable, "-c", code], lambda s, line: ready.set() if line == "ready" else None)
        await child.start()
        await asyncio.wait_for(ready.wait(), 20)
        return await child.stop(grace=20)

    assert _run(main()) == -15
    assert cleaned.exists()


def test_a_missing_or_not_executable_command_is_a_clear_error(tmp_path):
    script = tmp_path / "serve.sh"
    script.write_text("#!/bin/sh\n")
    for command, words in ((["no-such-command-devhttps"], "no such command"), ([str(script)], "not executable")):
        with pytest.raises(DevhttpsError) as err:
            _run(Child(command, lambda *_: None).start())
        assert words in err.value.message and command[0] in err.value.message and err.value.hint


@pytest.mark.skipif(sys.platform == "win32", reason="`#!` lines are read by POSIX kernels")
def test_a_script_whose_interpreter_is_missing_is_said_so(tmp_path):
    script = tmp_path / "serve.sh"
    script.write_text("#!/no/such/interpreter-devhttps -u\necho hi\n")
    script.chmod(0o755)
    for command, env in (([str(script)], None), (["serve.sh"], {**os.environ, "PATH": str(tmp_path)})):
        with pytest.raises(DevhttpsError) as err:
            _run(Child(command, lambda *_: None, env=env).start())
        assert "interpreter named in its first line (`#!/no/such/interpreter-devhttps -u`) was not found" in (
            err.value.message), err.value.message
        assert "no such" not in err.value.message and err.value.hint


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_the_command_dies_with_its_parent_even_by_sigkill(tmp_path):
    mark = f"devhttps-test-{uuid.uuid4().hex}"
    parent = (f"import asyncio, sys; sys.path.insert(0, {str(Path.cwd())!r}); "
              "from devhttps.supervise.process import Child\n"
              "async def main():\n"
              f"    c = Child({sleeper(mark)!r}, lambda *a: None)\n"
              "    await c.start(); print(c.pid, flush=True); await asyncio.sleep(300)\n"
              "asyncio.run(main())")
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    assert alive(pid)
    proc.kill()
    proc.wait()
    assert _gone(mark)


def test_the_watchdog_stops_watched_groups_when_its_input_ends_and_spares_forgotten_ones():
    marks = [f"devhttps-test-{uuid.uuid4().hex}" for _ in range(2)]
    import subprocess

    procs = [subprocess.Popen(sleeper(m), start_new_session=True) for m in marks]
    dog = Watchdog()
    for p in procs:
        dog.watch(p.pid)
    dog.forget(procs[1].pid)
    _run(dog.close())  # as when devhttps ends: the pipe closes
    procs[0].wait(10)
    assert procs[0].returncode == -15
    assert procs[1].poll() is None
    procs[1].kill()
    procs[1].wait()


def _gone(mark: str, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not processes_with(mark):
            return True
        time.sleep(0.05)
    return False
