"""Shared fixtures: the op library (skipped with a printed reason when it was not built) and fresh RNGs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def ort_library() -> Path:
    from sage_export import ort_library_path

    try:
        return ort_library_path()
    except FileNotFoundError as exc:
        pytest.skip(f"SageAttention ORT library not built: {exc}")


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A fresh seed per test run (set SAGE_TEST_SEED to replay); the seed is attached to failures."""
    seed = int(os.environ.get("SAGE_TEST_SEED", np.random.SeedSequence().entropy % (2**32)))
    request.node.user_properties.append(("seed", seed))
    return np.random.default_rng(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for key, value in item.user_properties:
            if key == "seed":
                report.sections.append(("random seed", f"SAGE_TEST_SEED={value} replays this test"))
