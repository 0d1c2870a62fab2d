"""Bad input gets a clear Python exception naming the problem; never a crash."""

from __future__ import annotations

import math

import pytest
import snnrs
import torch
from snnrs import ops


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.uint8])
def test_integer_and_bool_inputs_are_type_errors(dtype):
    with pytest.raises(TypeError, match="floating-point"):
        ops.lif(torch.ones(4, 3).to(dtype))


def test_scalar_input_is_a_value_error():
    with pytest.raises(ValueError, match="time dimension"):
        ops.lif(torch.tensor(1.0))


@pytest.mark.parametrize("tau", [0.0, -1.0, math.nan, math.inf])
def test_invalid_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        ops.lif(torch.randn(3, 2), tau=tau)
    with pytest.raises(ValueError, match="tau"):
        snnrs.nn.LIF(tau=tau)


@pytest.mark.parametrize("name,value", [("v_threshold", math.nan), ("v_reset", math.inf),
                                        ("alpha", -1.0), ("alpha", math.nan)])
def test_nan_or_out_of_range_parameters(name, value):
    with pytest.raises(ValueError, match=name):
        ops.lif(torch.randn(3, 2), **{name: value})


def test_plif_init_tau_and_w():
    with pytest.raises(ValueError, match="init_tau"):
        snnrs.nn.PLIF(init_tau=1.0)
    with pytest.raises(ValueError, match="not finite"):
        ops.plif(torch.randn(3, 2), torch.tensor(math.nan))
    with pytest.raises(ValueError, match="one element"):
        ops.plif(torch.randn(3, 2), torch.zeros(2))


def test_unknown_surrogate_and_step_mode():
    with pytest.raises(ValueError, match=r"unknown surrogate 'relu'.*sigmoid"):
        ops.lif(torch.randn(3, 2), surrogate="relu")
    with pytest.raises(ValueError, match="step_mode"):
        snnrs.nn.LIF(step_mode="x")


def test_state_shape_mismatch_says_to_reset():
    node = snnrs.nn.LIF(step_mode="m")
    node(torch.randn(4, 2, 3))
    with pytest.raises(RuntimeError, match="reset"):
        node(torch.randn(4, 5, 3))
    node.reset()
    assert node(torch.randn(4, 5, 3)).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="reset the neuron"):
        ops.lif(torch.randn(4, 5, 3), v0=torch.zeros(2, 3))


def test_device_mismatch_is_named():
    with pytest.raises(ValueError, match="meta"):
        ops.lif(torch.randn(3, 2), v0=torch.zeros(2, device="meta"))


def test_non_tensor_input():
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        ops.lif([[1.0, 2.0]])
    with pytest.raises(TypeError, match="v0"):
        ops.lif(torch.randn(3, 2), v0="zero")
