"""The sage-onnx command line: rewrite, inspect, run, and --help covering every option."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from graph_passes.cli import build_parser, main
from graph_passes.config import CONFIGURABLE

from .helpers import attrs_of, eager_attention, sage_nodes


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "attn.onnx"
    onnx.save(eager_attention(mask=np.zeros((1, 1, 1, 16))), path)
    return path


def test_help_documents_every_option(capsys):
    for command in ("rewrite", "inspect", "run"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        for name in CONFIGURABLE:
            assert f"--{name.replace('_', '-')}" in text
        assert "--qk" in text and "--pv" in text and "--config" in text
    parser = build_parser()
    for sub in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        for action in sub._actions:
            assert action.help, f"undocumented option {action.option_strings or action.dest}"


def test_rewrite_with_flags_config_and_report(tmp_path, model_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[defaults]\npv_dtype = "fp8_e4m3"\nsmooth_k = 0\n')
    out, report = tmp_path / "out.onnx", tmp_path / "report.json"
    assert (
        main(
            [
                "rewrite",
                str(model_path),
                str(out),
                "--config",
                str(config),
                "--qk",
                "int4",
                "--pv",
                "fp16",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "1 rewritten" in printed and "shape inference: ok" in printed
    (node,) = sage_nodes(onnx.load(out))
    a = attrs_of(node)
    assert (a["qk_quant"], a["pv_dtype"], a["smooth_k"]) == ("int4", "fp16", 0)  # flags beat [defaults]
    assert json.loads(report.read_text())["summary"]["rewritten"] == 1


def test_inspect_lists_sites_and_sage_nodes(tmp_path, model_path, capsys):
    assert main(["inspect", str(model_path)]) == 0
    text = capsys.readouterr().out
    assert "0 SageAttention node(s)" in text and "would rewrite" in text
    out = tmp_path / "out.onnx"
    main(["rewrite", str(model_path), str(out)])
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["sage_nodes"]) == 1 and data["report"]["sites"] == []
    assert data["sage_nodes"][0]["attributes"]["layout"] == "BSNH"


def test_run_prints_fidelity_and_latency(ort_library, model_path, capsys):
    assert main(["run", str(model_path), "--repeat", "2", "--pv", "fp16"]) == 0
    captured = capsys.readouterr()
    assert "cos=" in captured.out and "latency (median of 2)" in captured.out
    assert "rewritten: run 2/2" in captured.err  # progress on stderr
    assert main(["run", str(model_path), "--repeat", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outputs"][0]["cos"] > 0.99


def test_run_with_given_inputs(ort_library, tmp_path, model_path, capsys):
    inputs = tmp_path / "in.npz"
    rng = np.random.default_rng(0)
    np.savez(inputs, **{n: rng.standard_normal((2, 16, 4, 32)).astype(np.float32) for n in "qkv"})
    assert main(["run", str(model_path), "--inputs", str(inputs), "--repeat", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"]["q"] == [2, 16, 4, 32]


def test_errors_are_reported(tmp_path, model_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[defaults]\nqk_quant = "int3"\n')
    assert main(["rewrite", str(model_path), str(tmp_path / "o.onnx"), "--config", str(bad)]) == 1
    assert "allowed values" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["rewrite", str(model_path), str(tmp_path / "o.onnx"), "--qk", "int3"])
