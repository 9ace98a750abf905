#!/usr/bin/env python3
"""Create the project environment: torch and TensorFlow (CPU) and Horovod built from source.

Horovod 0.28.1 is published only as a source package. This script builds it
with Gloo on CPU for PyTorch and TensorFlow, applying three fixes that the
platform needs:

* torch >= 2.1 needs C++17, where Horovod's CMake files ask for C++14;
* CMake >= 4 rejects the bundled Gloo's old minimum version, so with such a
  CMake the build sets CMAKE_POLICY_VERSION_MINIMUM=3.5;
* horovod/tensorflow/xla_mpi_ops.cc includes a header that the TensorFlow
  wheel does not ship, so it is left out of the build (Horovod's XLA ops are
  then unavailable; its ordinary TensorFlow ops are unaffected).

TensorFlow 2.21 ships Keras 3, which Horovod's Keras optimizer does not
support; tf_keras 2.21 (Keras 2) is installed beside it.

The built wheel is cached under ``.cache/horovod/<key>/``, the key being a
hash of everything the build depends on, so that a second set-up installs it
in seconds (set CRPSGD_CACHE to keep the cache elsewhere). A stamp in the virtualenv makes an unchanged set-up a no-op.

With ``--gpu-operations NCCL`` (for a CUDA base image with NCCL), the build
also sets HOROVOD_GPU_OPERATIONS=NCCL, and the cache key and the final
``--check-build`` include it. Without the option the build, its key and its
checks are those of the CPU build.

Usage: python3 scripts/bootstrap.py [--venv PATH] [--rebuild] [--gpu-operations NCCL]
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CRPSGD_CACHE", ROOT / ".cache")) / "horovod"
HOROVOD_VERSION = "0.28.1"
TORCH_VERSION = "2.13.0"
TENSORFLOW_VERSION = "2.21.0"
# Raise when the patches or build flags below change, so cached wheels are rebuilt.
BUILD_RECIPE = 2
BUILD_ENV = {
    "HOROVOD_WITH_PYTORCH": "1",
    "HOROVOD_WITH_TENSORFLOW": "1",
    "TF_USE_LEGACY_KERAS": "1",
    "HOROVOD_WITHOUT_MXNET": "1",
    "HOROVOD_WITH_GLOO": "1",
    "HOROVOD_WITHOUT_MPI": "1",
    "HOROVOD_CPU_OPERATIONS": "GLOO",
}
# Horovod's runtime requirements; its setup.py also imports them while configuring.
HOROVOD_REQUIREMENTS = ["cloudpickle", "psutil", "pyyaml", "packaging"]


def say(message):
    print(f"[setup] {message}", flush=True)


def fail(message):
    print(f"[setup] error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(command, **kwargs):
    """Run a command, stopping the set-up with its output if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        fail(f"command failed ({result.returncode}): {' '.join(map(str, command))}\n"
             f"{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return result.stdout


def check_python():
    if sys.version_info[:2] != (3, 11):
        fail(f"Python 3.11 is required (torch {TORCH_VERSION} and Horovod {HOROVOD_VERSION} "
             f"are pinned for it), this is {platform.python_version()} at {sys.executable}")


def cmake_version():
    """Return the CMake version as a tuple, stopping the set-up if CMake is missing or too old."""
    cmake = shutil.which("cmake")
    if cmake is None:
        fail("cmake not found: Horovod's build needs CMake >= 3.13 "
             "(Debian: apt-get install cmake; a CMake 3.x is preferred over 4.x)")
    output = run([cmake, "--version"])
    match = re.search(r"version\s+(\d+)\.(\d+)", output)
    if match is None:
        fail(f"could not read the CMake version from: {output!r}")
    version = (int(match.group(1)), int(match.group(2)))
    if version < (3, 13):
        fail(f"CMake {version[0]}.{version[1]} at {cmake} is too old: Horovod needs >= 3.13")
    return version


def check_build_tools():
    for tool, package in (("c++", "g++"), ("make", "make")):
        if shutil.which(tool) is None:
            fail(f"{tool} not found: building Horovod needs a C++17 compiler and make "
                 f"(Debian: apt-get install {package})")
    return cmake_version()


def venv_python(venv):
    return venv / "bin" / "python"


def pip(venv, *args):
    return run([str(venv_python(venv)), "-m", "pip", "--disable-pip-version-check", *args])


def ensure_venv(venv):
    if not venv_python(venv).exists():
        say(f"creating the virtualenv {venv}")
        run([sys.executable, "-m", "venv", str(venv)])
        pip(venv, "install", "--quiet", "--upgrade", "pip", "setuptools", "wheel")


GPU_OPERATIONS = ("NCCL",)


def build_env(gpu_operations=None):
    """Return the Horovod build variables: BUILD_ENV, plus HOROVOD_GPU_OPERATIONS when requested."""
    if gpu_operations is None:
        return dict(BUILD_ENV)
    return {**BUILD_ENV, "HOROVOD_GPU_OPERATIONS": gpu_operations}


def build_key(cmake, gpu_operations=None):
    """Return a short hash of everything the Horovod wheel depends on."""
    inputs = {
        "horovod": HOROVOD_VERSION,
        "torch": TORCH_VERSION,
        "tensorflow": TENSORFLOW_VERSION,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cmake_major": cmake[0],
        "env": build_env(gpu_operations),
        "recipe": BUILD_RECIPE,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def patch_file(source, relative, old, new):
    path = source / relative
    text = path.read_text()
    if old not in text:
        fail(f"expected {old!r} in {relative} of Horovod {HOROVOD_VERSION}; "
             "the source package differs from the one this script knows")
    path.write_text(text.replace(old, new))


def patch_sources(source):
    """Apply the C++17 fix and leave the XLA ops out of the TensorFlow library."""
    for relative in ("CMakeLists.txt", "horovod/torch/CMakeLists.txt"):
        patch_file(source, relative, "set(CMAKE_CXX_STANDARD 14)", "set(CMAKE_CXX_STANDARD 17)")
    patch_file(source, "horovod/tensorflow/CMakeLists.txt",
               'list(APPEND TF_SOURCES "${PROJECT_SOURCE_DIR}/horovod/tensorflow/xla_mpi_ops.cc")\n', "")


def download_sdist(venv):
    sdist_dir = CACHE / "sdist"
    sdist = sdist_dir / f"horovod-{HOROVOD_VERSION}.tar.gz"
    if not sdist.exists():
        say(f"downloading the Horovod {HOROVOD_VERSION} source package")
        pip(venv, "download", "--quiet", "--no-deps", "--no-binary", ":all:",
            f"horovod=={HOROVOD_VERSION}", "-d", str(sdist_dir))
    return sdist


def watch_build(process, log_path, started):
    """Print the build's progress every 20 seconds until it ends."""
    while process.poll() is None:
        time.sleep(20)
        progress = re.findall(r"\[\s*(\d+)%\]", log_path.read_text(errors="replace"))
        percent = f", CMake at {progress[-1]}%" if progress else ""
        if process.poll() is None:
            say(f"still building Horovod: {time.monotonic() - started:.0f} s{percent}")


def build_wheel(venv, cmake, wheel_dir, gpu_operations=None):
    """Build the Horovod wheel into ``wheel_dir``; a few minutes on two cores."""
    sdist = download_sdist(venv)

    env = dict(os.environ, **build_env(gpu_operations), MAKEFLAGS=f"-j{os.cpu_count() or 1}")
    if cmake >= (4, 0):
        env["CMAKE_POLICY_VERSION_MINIMUM"] = "3.5"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    log_path = wheel_dir / "build.log"
    with tempfile.TemporaryDirectory(prefix="horovod-build-") as scratch:
        with tarfile.open(sdist) as archive:
            archive.extractall(scratch, filter="data")
        source = Path(scratch) / f"horovod-{HOROVOD_VERSION}"
        patch_sources(source)

        target = f"GPU operations {gpu_operations}" if gpu_operations else "CPU"
        say(f"building Horovod {HOROVOD_VERSION} (PyTorch, TensorFlow, Gloo, {target}); log: {log_path}")
        started = time.monotonic()
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [str(venv_python(venv)), "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                 "-v", str(source), "-w", str(Path(scratch) / "dist")],
                stdout=log, stderr=subprocess.STDOUT, env=env)
            watcher = threading.Thread(target=watch_build, args=(process, log_path, started), daemon=True)
            watcher.start()
            returncode = process.wait()
        if returncode != 0:
            tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-40:])
            fail(f"the Horovod build failed (exit {returncode}); last lines of {log_path}:\n{tail}")
        say(f"Horovod built in {time.monotonic() - started:.0f} s")
        for wheel in (Path(scratch) / "dist").glob("horovod-*.whl"):
            shutil.move(str(wheel), wheel_dir / wheel.name)


def cached_wheel(wheel_dir):
    wheels = sorted(wheel_dir.glob(f"horovod-{HOROVOD_VERSION}-*.whl"))
    return wheels[0] if wheels else None


def check_horovod(venv, gpu_operations=None):
    horovodrun = venv / "bin" / "horovodrun"
    output = run([str(horovodrun), "--check-build"])
    features = ("PyTorch", "TensorFlow", "Gloo") + ((gpu_operations,) if gpu_operations else ())
    for feature in features:
        if not re.search(rf"\[X\]\s+{feature}", output):
            fail(f"horovodrun --check-build does not list {feature}:\n{output}")
    return output


def stamp_contents(key):
    setup_hash = hashlib.sha256((ROOT / "setup.py").read_bytes()).hexdigest()[:16]
    return {"horovod_build": key, "setup_py": setup_hash}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get("CRPSGD_VENV", ROOT / ".venv")),
                        help="virtualenv to create or update (default: .venv, or $CRPSGD_VENV)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild Horovod even if a cached wheel exists")
    parser.add_argument("--gpu-operations", choices=GPU_OPERATIONS, default=None,
                        help="also build Horovod's GPU collectives with this library (needs CUDA and NCCL "
                             "on the machine); default: CPU only")
    args = parser.parse_args()
    venv = args.venv.resolve()

    check_python()
    cmake = check_build_tools()
    key = build_key(cmake, args.gpu_operations)
    stamp = venv / "crpsgd-setup.json"
    if not args.rebuild and stamp.exists() and json.loads(stamp.read_text()) == stamp_contents(key):
        say(f"environment {venv} is ready")
        return

    started = time.monotonic()
    ensure_venv(venv)
    say(f"installing torch {TORCH_VERSION} and TensorFlow {TENSORFLOW_VERSION} (CPU), tf_keras, "
        "numpy and Horovod's requirements (the first time downloads about 1 GB)")
    pip(venv, "install", "--quiet", f"torch=={TORCH_VERSION}", f"tensorflow-cpu=={TENSORFLOW_VERSION}",
        f"tf_keras=={TENSORFLOW_VERSION}", "numpy", *HOROVOD_REQUIREMENTS)

    wheel_dir = CACHE / key
    if args.rebuild or cached_wheel(wheel_dir) is None:
        build_wheel(venv, cmake, wheel_dir, args.gpu_operations)
    else:
        say(f"using the cached Horovod wheel in {wheel_dir}")
    pip(venv, "install", "--quiet", "--force-reinstall", "--no-deps", str(cached_wheel(wheel_dir)))

    say("installing crpsgd_hvd with its torch, tf, examples and dev extras")
    pip(venv, "install", "--quiet", "-e", f"{ROOT}[torch,tf,examples,dev]")
    say(check_horovod(venv, args.gpu_operations).strip().replace("\n", "\n[setup] "))
    stamp.write_text(json.dumps(stamp_contents(key)))
    say(f"environment {venv} is ready, set up in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
