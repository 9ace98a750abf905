"""Start Horovod jobs on this machine with Gloo, with a hard time limit."""

import os
import signal
import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).resolve().parent / "workers"
ROOT = Path(__file__).resolve().parents[2]


def horovodrun(script, *args, np=2, timeout=180, extra=()):
    """Run ``script`` under ``horovodrun --gloo -np np`` and return the CompletedProcess.

    ``script`` is a file name in ``workers/`` or a path relative to the repository root.

    The job gets its own process group, so a hang ends with every process
    killed and a ``subprocess.TimeoutExpired`` for the test to report.
    """
    options = ["--gloo", "-np", str(np), "-H", f"localhost:{np}", *extra]
    return run_job(options, script, args, timeout)


def horovodrun_elastic(script, *args, np, min_np, max_np, discovery_script, timeout=180):
    """Run ``script`` as an elastic job whose hosts ``discovery_script`` prints, over the loopback interface.

    ``--network-interface lo`` also makes Horovod 0.28.1 start with one
    host; without a network interface, elastic Gloo jobs wait for two.
    """
    options = ["-np", str(np), "--min-np", str(min_np), "--max-np", str(max_np),
               "--host-discovery-script", str(discovery_script), "--network-interface", "lo"]
    return run_job(options, script, args, timeout)


def write_host_discovery(directory, hosts):
    """Write ``hosts`` to DIRECTORY/hosts and a discovery script that prints that file; return the script."""
    (directory / "hosts").write_text(hosts)
    script = directory / "discover.sh"
    script.write_text(f"#!/bin/sh\ncat '{directory / 'hosts'}'\n")
    script.chmod(0o755)
    return script


def run_job(options, script, args, timeout):
    horovodrun_bin = Path(sys.executable).with_name("horovodrun")
    command = [str(horovodrun_bin), *options,
               sys.executable, str(WORKERS / script if (WORKERS / script).exists() else ROOT / script),
               *map(str, args)]
    # TF_CPP_MIN_LOG_LEVEL=2 keeps TensorFlow's start-up notices out of the output that tests read.
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"horovodrun {script} did not finish in {timeout} s; output:\n{output}")
    return subprocess.CompletedProcess(command, process.returncode, output, None)
