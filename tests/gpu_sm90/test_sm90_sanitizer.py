"""compute-sanitizer memcheck, racecheck and synccheck over small calls of the sm_90a path
(sanitize_cases_sm90.py). Skipped with the reason printed without an sm_90 GPU, the library or the tool."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sage_export.testing import run_under_sanitizer
from sm90_binding import load_or_skip_reason

LIB, SKIP_REASON = load_or_skip_reason()
if LIB is None:
    print(f"tests/gpu_sm90 sanitizer skipped: {SKIP_REASON}")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(LIB is None, reason=SKIP_REASON or "")]


@pytest.mark.parametrize("tool", ["memcheck", "racecheck", "synccheck"])
def test_sanitizer_clean(tool):
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None:
        pytest.skip("compute-sanitizer is not on PATH")
    script = Path(__file__).with_name("sanitize_cases_sm90.py")
    env = dict(os.environ)
    env["SAGE_SM90_LIB"] = str(LIB.path)
    returncode, tail = run_under_sanitizer(sanitizer, tool, script, env)
    print(tail)
    assert returncode == 0, tail
    assert "sm90 calls ran" in tail, tail
    # memcheck/synccheck end with "ERROR SUMMARY: 0 errors", racecheck with "RACECHECK SUMMARY: 0 hazards ...".
    summary = "RACECHECK SUMMARY: 0 hazards" if tool == "racecheck" else "ERROR SUMMARY: 0 errors"
    assert summary in tail, tail
