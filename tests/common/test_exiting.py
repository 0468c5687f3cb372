"""exit_now ends a process as a normal exit would, minus the module teardown: what a CLI command
or a job worker started (thread and process pools, atexit handlers, buffered output) ends with it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import atexit, concurrent.futures as cf, multiprocessing as mp, sys
    from modelloop.common.exiting import exit_now

    if __name__ == "__main__":
        atexit.register(lambda: print("atexit ran", flush=True))
        threads = cf.ThreadPoolExecutor(2)
        processes = cf.ProcessPoolExecutor(2, mp_context=mp.get_context("forkserver"))
        assert threads.submit(pow, 2, 3).result() == 8
        assert processes.submit(pow, 2, 5).result() == 32
        sys.stdout.write("buffered answer")  # no newline, no flush: exit_now flushes it
        exit_now(3)
""")


def test_a_process_with_live_pools_ends_with_its_status_and_output(tmp_path):
    script = tmp_path / "ends.py"
    script.write_text(SCRIPT)
    # bounded: before the fix this waited forever for the process pool's manager thread
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3, done.stderr
    assert "buffered answer" in done.stdout and "atexit ran" in done.stdout
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
