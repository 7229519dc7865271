"""Fixtures of the TensorRT plugin tests: the plugin library and its test driver.

Both are built only when CMake saw TensorRT headers (-DTENSORRT_INCLUDE_DIR) and a CUDA compiler; without
them every test here that needs them skips and says why (CI has no TensorRT headers).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DRIVER_NAME = "sage_trt_plugin_test"


@pytest.fixture(scope="session")
def trt_library() -> Path:
    from sage_export import trt_library_path

    try:
        return trt_library_path()
    except FileNotFoundError as exc:
        pytest.skip(
            f"TensorRT plugin not built ({exc}). It is built when CMake is configured with "
            "-DTENSORRT_INCLUDE_DIR=<TensorRT>/include and a CUDA compiler is found."
        )


@pytest.fixture(scope="session")
def trt_driver(trt_library: Path) -> Path:
    """The driver binary: $SAGE_TRT_TEST_DRIVER, else <plugin build dir>/tests/sage_trt_plugin_test."""
    override = os.environ.get("SAGE_TRT_TEST_DRIVER")
    path = Path(override) if override else trt_library.parent / "tests" / DRIVER_NAME
    if not path.is_file():
        pytest.skip(
            f"TensorRT plugin test driver not found at {path}; build target {DRIVER_NAME} "
            "(CMake option SAGE_BUILD_TRT_TESTS=ON) or set SAGE_TRT_TEST_DRIVER."
        )
    return path


@pytest.fixture(scope="session")
def run_driver(trt_driver: Path, trt_library: Path):
    """Runs `sage_trt_plugin_test <library> <args...>`; returns the CompletedProcess (stdout + stderr merged)."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(trt_driver), str(trt_library), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )

    return run
