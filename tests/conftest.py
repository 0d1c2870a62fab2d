import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=60,
                          derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=["reference", "cpu", "cuda"])
def backend(request) -> torch.device:
    """The device an op test runs on, with the named backend behind the ops there: the
    pure-PyTorch twins (on the CPU), the Rust kernels, or the CUDA kernels (skipped without a
    GPU). A new backend joins by adding its name here and registering itself for a device."""
    from snnrs import ops
    from snnrs.backends import reference

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if request.param == "reference":
        previous = ops.register_backend("cpu", reference)
        request.addfinalizer(lambda: ops.register_backend("cpu", previous))
        return torch.device("cpu")
    return torch.device(request.param)
