"""The Dockerfile runs the project's own set-up script with options that script accepts.

No Docker engine runs in the test environment, so the image itself is not
built here. These tests check the Dockerfile's text against the set-up
script, and the script's GPU option against its CPU default.
"""

import hashlib
import importlib.util
import json
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def load_bootstrap():
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "scripts" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def instructions():
    """Return the Dockerfile's (instruction, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.splitlines()
                                           if not line.lstrip().startswith("#")))
    pairs = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_default_base_is_python_311():
    pairs = instructions()

    assert pairs[0] == ("ARG", "BASE_IMAGE=python:3.11-slim-bookworm")
    assert pairs[1] == ("FROM", "${BASE_IMAGE}")


def test_image_runs_bootstrap_with_accepted_options():
    runs = [rest for keyword, rest in instructions() if keyword == "RUN" and "scripts/bootstrap.py" in rest]
    help_text = subprocess.run([sys.executable, str(ROOT / "scripts" / "bootstrap.py"), "--help"],
                               capture_output=True, text=True, check=True).stdout

    assert len(runs) == 1
    words = shlex.split(runs[0])
    assert words[:2] == ["python3.11", "scripts/bootstrap.py"]
    for option in (word for word in words if word.startswith("--")):
        assert option in help_text, f"bootstrap.py does not accept {option}"
    assert "--gpu-operations {NCCL}" in help_text
    assert ("COPY", ". .") in instructions()


def test_cpu_cache_key_unchanged_by_gpu_option():
    bootstrap = load_bootstrap()
    # The CPU key hashes these inputs, as before the GPU option existed.
    inputs = {"horovod": "0.28.1", "torch": "2.13.0", "tensorflow": "2.21.0",
              "python": platform.python_version(), "machine": platform.machine(), "cmake_major": 3,
              "env": {"HOROVOD_WITH_PYTORCH": "1", "HOROVOD_WITH_TENSORFLOW": "1", "TF_USE_LEGACY_KERAS": "1",
                      "HOROVOD_WITHOUT_MXNET": "1", "HOROVOD_WITH_GLOO": "1", "HOROVOD_WITHOUT_MPI": "1",
                      "HOROVOD_CPU_OPERATIONS": "GLOO"},
              "recipe": 2}
    expected = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]

    assert bootstrap.build_key((3, 25)) == expected
    assert bootstrap.build_key((3, 25), "NCCL") != expected
    assert bootstrap.build_env("NCCL")["HOROVOD_GPU_OPERATIONS"] == "NCCL"
    assert "HOROVOD_GPU_OPERATIONS" not in bootstrap.build_env()
