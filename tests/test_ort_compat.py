"""The op library loads and runs in the oldest and the newest supported onnxruntime (1.20.x and 1.31.x).

The installed onnxruntime is tested in-process by every other test; this test also runs a smoke script
under onnxruntime 1.20.1 and 1.31.1 installed into a cache folder (downloaded from PyPI once), each in a
subprocess so two runtimes never share a process.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SAGE_ORT_COMPAT_CACHE", ROOT / ".cache" / "ort_versions"))


def install_runtime(version: str) -> Path:
    target = CACHE / version
    if not (target / "onnxruntime" / "__init__.py").is_file():
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), f"onnxruntime=={version}"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            pytest.skip(f"could not download onnxruntime=={version} from PyPI: {result.stderr.strip()[-300:]}")
    return target


@pytest.mark.parametrize("version", ["1.20.1", "1.31.1"])
def test_library_runs_in_onnxruntime_version(ort_library, version):
    target = install_runtime(version)
    env = dict(os.environ, SAGE_ORT_LIBRARY=str(ort_library))
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(Path(__file__).parent), str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "compat_smoke.py")], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, f"onnxruntime {version}: {result.stdout}\n{result.stderr[-2000:]}"
    assert result.stdout.strip().splitlines()[-1] == f"ok {version}", result.stdout
