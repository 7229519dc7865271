"""GPU test fixtures: skip (with the reason printed) unless torch sees a GPU and the library has the CUDA runner."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cuda_api():
    from sage_export import cuda_api

    ok, reason = cuda_api.cuda_available()
    if not ok:
        print(f"skipping GPU tests: {reason}")
        pytest.skip(reason)
    return cuda_api


@pytest.fixture(scope="session")
def device_arch(cuda_api) -> int:
    import torch

    major, minor = torch.cuda.get_device_capability()
    return major * 10 + minor
