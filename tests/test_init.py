"""The package root is the backend-neutral core: importing it loads no framework."""

import subprocess
import sys

import crpsgd_hvd


def test_core_imports_no_framework():
    code = ("import sys, crpsgd_hvd, crpsgd_hvd.cli, crpsgd_hvd.problems, crpsgd_hvd.datasets; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'horovod') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in crpsgd_hvd.__all__:
        assert getattr(crpsgd_hvd, name) is not None, name
