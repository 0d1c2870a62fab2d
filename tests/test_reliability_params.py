"""A neuron's physical parameters are checked for meaning by one rule at every entry point, and
the ops' numeric knobs refuse nonsense.

The charge keeps ``1 - leak`` of ``v - v_rest`` per step (docs/neurons.md), so ``leak = 1/tau``
must lie in [0, 1]: ``tau >= 1``, snnTorch's ``beta`` in [0, 1], PLIF's ``init_tau > 1``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from snnrs import _buffers, _contract, _core, ops
from snnrs.nn import IF, LIF, PLIF, NeuronSpec, SnnTorchLeaky
from torch._subclasses.fake_tensor import FakeTensorMode

SCALARS = (True, 1.0, 0.0, False, "sigmoid", 4.0)  # decay_input ... alpha, after the leak
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


BAD_RATE = st.one_of(st.floats(max_value=-5e-324), st.floats(min_value=1.0, exclude_min=True),
                     NON_FINITE)  # outside [0, 1]
BAD_TAU = st.one_of(st.floats(max_value=1.0, exclude_max=True), NON_FINITE)  # not in [1, inf)
BAD_INIT_TAU = st.one_of(st.floats(max_value=1.0), NON_FINITE)  # not in (1, inf)


def _message(rule, name: str, value: float) -> str:
    with pytest.raises(ValueError) as info:
        rule(name, value)
    return str(info.value)


def _refuses(call, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------
# Each entry point, each parameterisation.

X, V0 = torch.zeros(3, 4), torch.zeros(4)

RATE_ENTRIES = {
    "make_params": lambda leak: ops.make_params(leak),
    "torch.ops forward": lambda leak: torch.ops.snnrs.neuron_forward(X, V0, None, leak, *SCALARS),
    "torch.ops rate": lambda leak: torch.ops.snnrs.neuron_rate_forward(
        X, V0, None, leak, *SCALARS),
    "torch.ops backward": lambda leak: torch.ops.snnrs.neuron_backward(
        X, None, X, None, None, leak, *SCALARS),
    "the fake": lambda leak: _fake_forward(leak),
}
TAU_ENTRIES = {
    "ops.lif": lambda tau: ops.lif(X, tau=tau),
    "ops.tau_to_leak": ops.tau_to_leak,
    "LIF": lambda tau: LIF(tau=tau),
    "LIF without input decay": lambda tau: LIF(tau=tau, decay_input=False),
    "NeuronSpec": lambda tau: NeuronSpec("lif", tau=tau),
}
# (entry point, the name its message gives the argument)
FACTOR_ENTRIES = {
    "LIF.from_leak": (LIF.from_leak, "leak_factor"),
    "NeuronSpec": (lambda beta: NeuronSpec("lif", leak=beta), "leak"),
    "SnnTorchLeaky": (lambda beta: SnnTorchLeaky(beta, 1.0, "atan", 2.0, False, False), "beta"),
}
INIT_TAU_ENTRIES = {
    "PLIF": (lambda tau: PLIF(init_tau=tau), "init_tau"),
    "NeuronSpec": (lambda tau: NeuronSpec("plif", tau=tau), "tau"),
}


def _fake_forward(leak: float):
    with FakeTensorMode():
        x, v0 = torch.empty(3, 4), torch.empty(4)
        return torch.ops.snnrs.neuron_forward(x, v0, None, leak, *SCALARS)


@pytest.mark.parametrize("leak", [1.5, 1e300, -0.25, math.nan, math.inf])
@pytest.mark.parametrize("entry", RATE_ENTRIES)
def test_the_ops_refuse_a_leak_outside_0_1(entry, leak):
    with pytest.raises(ValueError, match=r"leak must be in \[0, 1\] \(1/tau: .*; got "):
        RATE_ENTRIES[entry](leak)


@pytest.mark.parametrize("tau", [0.5, 1e-300, 0.0, -2.0, math.nan, math.inf])
@pytest.mark.parametrize("entry", TAU_ENTRIES)
def test_a_time_constant_below_one_step_is_refused(entry, tau):
    with pytest.raises(ValueError, match=rf"tau must be a finite number >= 1 \(.*; got {tau}"):
        TAU_ENTRIES[entry](tau)


@pytest.mark.parametrize("beta", [1.5, -0.1, math.nan, math.inf])
@pytest.mark.parametrize("entry", FACTOR_ENTRIES)
def test_a_leak_factor_outside_0_1_is_refused(entry, beta):
    call, name = FACTOR_ENTRIES[entry]
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\] \(.*; got {beta}"):
        call(beta)


@pytest.mark.parametrize("init_tau", [1.0, 0.5, 1e-300, math.nan, math.inf])
@pytest.mark.parametrize("entry", INIT_TAU_ENTRIES)
def test_plif_refuses_an_initial_tau_of_one_step_or_less(entry, init_tau):
    call, name = INIT_TAU_ENTRIES[entry]
    with pytest.raises(ValueError, match=rf"{name} must be a finite number > 1 \(.*; got "):
        call(init_tau)


def test_a_parameter_that_is_no_number_is_a_type_error():
    for call in (lambda: LIF(tau="2"), lambda: LIF.from_leak(None), lambda: PLIF(init_tau=True),
                 lambda: ops.make_params(torch.tensor(0.5))):
        with pytest.raises(TypeError, match="must be a Python number"):
            call()
    with pytest.raises(ValueError, match="tau is too large for a float"):
        LIF(tau=10**400)


def test_the_rust_record_refuses_the_same_leak():
    for leak in (1.5, -0.5, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"leak \(1/tau\) must be in \[0, 1\]"):
            _core.Params(leak, True, 1.0, 0.0, False, "atan", 1.0)
    assert _core.Params(1.0, True, 1.0, 0.0, False, "atan", 1.0).args[0] == 1.0


def test_a_leak_set_behind_the_constructor_is_refused_at_the_op():
    node = LIF(step_mode="m")
    node.params = node.params._replace(leak=2.0)
    with pytest.raises(ValueError, match=r"leak must be in \[0, 1\]"):
        node(torch.rand(3, 2))


def test_the_leak_gradient_with_input_decay_needs_a_leak():
    with pytest.raises(ValueError, match="divides by leak, which must then be > 0"):
        torch.ops.snnrs.neuron_backward(X, None, X, V0, None, 0.0, *SCALARS)


# ---------------------------------------------------------------------------------------------
# The ends of each interval are neurons.


def test_tau_one_forgets_the_state_every_step():
    x = torch.tensor([[0.6], [0.6], [1.2], [0.3]], dtype=torch.float64)
    for decay_input in (True, False):
        spikes, v = ops.lif(x, tau=1.0, decay_input=decay_input)
        assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]  # H_t = x_t, nothing kept
        assert v.item() == 0.3


def test_a_leak_factor_of_one_is_if():
    node = LIF.from_leak(1.0, v_reset=None)
    assert node.params == IF(v_reset=None).params and node.tau == math.inf
    assert "tau=inf" in repr(node)
    assert LIF.from_leak(0.0).params.leak == 1.0


def test_every_built_in_model_and_recipe_neuron_is_valid():
    from snnrs.models.joint import JOINT_NEURON
    from snnrs.models.registry import DEFAULT_NEURON

    for spec in (DEFAULT_NEURON, JOINT_NEURON):
        assert 0 <= spec.build().params.leak <= 1
    for beta in (0.5, 0.549834, 0.25):  # the recipes' leak options
        assert NeuronSpec("lif", leak=beta).build().params.leak == pytest.approx(1 - beta)


# ---------------------------------------------------------------------------------------------
# The properties.


@given(leak=st.floats(0.0, 1.0), decay_input=st.booleans(), soft=st.booleans(),
       T=st.integers(1, 12), bound=st.floats(0.0, 10.0), seed=st.integers(0, 99))
def test_any_leak_in_0_1_runs_and_stays_bounded(backend, leak, decay_input, soft, T, bound, seed):
    """With ``|x| <= B`` and ``v0 = 0``, a neuron's ``|v_T|`` is at most ``T * B``: each step
    keeps at most all of the state and adds at most ``x``, and a reset only moves it toward 0."""
    torch.manual_seed(seed)
    x = (torch.rand(T, 16, dtype=torch.float64, device=backend) * 2 - 1) * bound
    v_reset = None if soft else 0.0
    p = ops.make_params(leak, decay_input, 1.0, v_reset)
    spikes, v = ops.multistep(x, None, p)
    assert torch.isfinite(spikes).all() and torch.isfinite(v).all()
    assert float(v.abs().max()) <= T * bound * (1 + 1e-12)
    x.requires_grad_(True)
    ops.multistep(x, None, p)[0].sum().backward()
    assert torch.isfinite(x.grad).all()


@given(tau=st.floats(1.0, 1e12), decay_input=st.booleans(), beta=st.floats(0.0, 1.0),
       init_tau=st.floats(1.0, 1e12, exclude_min=True))
def test_every_valid_parameterisation_builds_a_neuron(tau, decay_input, beta, init_tau):
    x = torch.rand(4, 3, dtype=torch.float64) * 4 - 2
    for node in (LIF(tau=tau, decay_input=decay_input, step_mode="m"),
                 NeuronSpec("lif", tau=tau, decay_input=decay_input).build(),
                 LIF.from_leak(beta, step_mode="m"), NeuronSpec("lif", leak=beta).build(),
                 PLIF(init_tau=init_tau, step_mode="m"), NeuronSpec("plif", tau=init_tau).build()):
        assert 0 <= node.params.leak <= 1
        assert torch.isfinite(node(x)).all() and torch.isfinite(node.v).all()
    assert torch.isfinite(ops.lif(x, tau=tau, decay_input=decay_input)[1]).all()


@given(leak=BAD_RATE)
def test_every_op_entry_refuses_a_bad_leak_with_one_message(leak):
    message = _message(_contract.leak_rate, "leak", leak)
    for call in RATE_ENTRIES.values():
        _refuses(lambda call=call: call(leak), message)
    with pytest.raises(ValueError, match=r"leak \(1/tau\) must be in \[0, 1\]"):
        _core.Params(leak, False, 1.0, None, False, "atan", 2.0)


@given(tau=BAD_TAU)
def test_every_tau_entry_refuses_a_bad_tau_with_one_message(tau):
    message = _message(_contract.time_constant, "tau", tau)
    for call in TAU_ENTRIES.values():
        _refuses(lambda call=call: call(tau), message)


@given(beta=BAD_RATE)
def test_every_leak_factor_entry_refuses_a_bad_beta_with_one_message(beta):
    for call, name in FACTOR_ENTRIES.values():
        _refuses(lambda call=call: call(beta), _message(_contract.leak_factor, name, beta))


@given(init_tau=BAD_INIT_TAU)
def test_every_plif_entry_refuses_a_bad_initial_tau_with_one_message(init_tau):
    for call, name in INIT_TAU_ENTRIES.values():
        _refuses(lambda call=call: call(init_tau),
                 _message(_contract.initial_time_constant, name, init_tau))


# ---------------------------------------------------------------------------------------------
# The knobs.


@pytest.mark.parametrize(("nbytes", "error", "match"), [
    (math.nan, TypeError, "nbytes must be an integer number of bytes, got nan"),
    (math.inf, TypeError, "must be an integer number of bytes, got inf"),
    (1.5e9, TypeError, "must be an integer number of bytes"),
    (True, TypeError, "must be an integer number of bytes, got True"),
    ("1000", TypeError, "must be an integer number of bytes"),
    (-1, ValueError, r"nbytes must be >= 0 \(0 keeps no buffers\), got -1"),
])
def test_set_cache_limit_refuses_nonsense_and_keeps_its_limit(nbytes, error, match):
    before = _buffers._limit
    with pytest.raises(error, match=match):
        ops.set_cache_limit(nbytes)
    assert _buffers._limit == before


@given(nbytes=st.one_of(st.floats(), st.booleans(), st.integers(max_value=-1)))
def test_set_cache_limit_takes_only_a_count_of_bytes(nbytes):
    before = _buffers._limit
    with pytest.raises((TypeError, ValueError), match="set_cache_limit: nbytes must be"):
        ops.set_cache_limit(nbytes)
    assert _buffers._limit == before


def test_set_cache_limit_takes_any_integer_count():
    try:
        ops.set_cache_limit(0)
        assert _buffers._limit == 0
        ops.set_cache_limit(np.int64(5) << 40)  # any Integral, not only int
        assert _buffers._limit == 5 << 40
    finally:
        ops.set_cache_limit(1 << 30)


@pytest.mark.parametrize("enabled", ["no", 0, 1.0, None])
def test_use_torch_threads_takes_only_a_bool(enabled):
    with pytest.raises(TypeError, match="enabled must be True or False"):
        ops.use_torch_threads(enabled)

