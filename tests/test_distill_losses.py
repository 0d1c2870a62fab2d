"""Distillation losses (docs/methods.md) against independent float64 numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from snnrs import distill
from snnrs.models.joint import JointOutput


def np_log_softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def np_kd(student, teacher, tau):
    """tau^2 * mean_b KL(softmax(teacher / tau) || softmax(student / tau))."""
    log_q, log_p = np_log_softmax(teacher / tau), np_log_softmax(student / tau)
    return tau**2 * np.mean(np.sum(np.exp(log_q) * (log_q - log_p), axis=1))


def np_soft_ce(student, teacher, tau):
    q = np.exp(np_log_softmax(teacher / tau))
    return tau**2 * np.mean(-np.sum(q * np_log_softmax(student / tau), axis=1))


def np_minmax(m, per_sample, eps=1e-3):
    m = m.reshape(m.shape[0], -1)
    if per_sample:
        lo = m.min(axis=1, keepdims=True)
        return (m - lo) / ((m - lo).max(axis=1, keepdims=True) + eps)
    return (m - m.min()) / ((m - m.min()).max() + eps)


def np_samd(m_s, m_a, tau, variant):
    per_sample = variant == "paper"
    log_ps = np_log_softmax(np_minmax(m_s, per_sample) / tau)
    log_pa = np_log_softmax(np_minmax(m_a, per_sample) / tau)
    kl = np.mean(np.sum(np.exp(log_pa) * (log_pa - log_ps), axis=1))
    return tau**2 * kl if variant == "paper" else kl


def rand(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


# KD ---------------------------------------------------------------------------------------


@given(b=st.integers(1, 4), k=st.integers(2, 7), tau=st.floats(0.5, 8.0), seed=st.integers(0, 99))
def test_kd_matches_numpy(b, k, tau, seed):
    s, t = rand(b, k, seed=seed, scale=3.0), rand(b, k, seed=seed + 100, scale=3.0)
    got = distill.KD(temperature=tau)(s, t)
    np.testing.assert_allclose(got.item(), np_kd(s.numpy(), t.numpy(), tau), rtol=1e-9,
                               atol=1e-12)


@given(b=st.integers(1, 4), k=st.integers(2, 7), tau=st.floats(0.5, 8.0), seed=st.integers(0, 99))
def test_soft_cross_entropy_matches_numpy_and_exceeds_kd_by_teacher_entropy(b, k, tau, seed):
    s, t = rand(b, k, seed=seed), rand(b, k, seed=seed + 100)
    got = distill.soft_cross_entropy(s, t, tau).item()
    np.testing.assert_allclose(got, np_soft_ce(s.numpy(), t.numpy(), tau), rtol=1e-9)
    log_q = np_log_softmax(t.numpy() / tau)
    entropy = tau**2 * np.mean(-np.sum(np.exp(log_q) * log_q, axis=1))
    np.testing.assert_allclose(got - distill.kd_loss(s, t, tau).item(), entropy, rtol=1e-9,
                               atol=1e-12)


def test_kd_is_zero_for_identical_logits_and_a_step_moves_the_student_toward_the_teacher():
    t = rand(5, 10, seed=1, scale=2.0)
    assert distill.KD()(t.clone(), t).item() == pytest.approx(0.0, abs=1e-12)
    s = rand(5, 10, seed=2, scale=2.0).requires_grad_()
    kd = distill.KD(temperature=4.0)
    before = kd(s, t)
    before.backward()
    with torch.no_grad():
        s2 = s - 1.0 * s.grad
    assert kd(s2, t).item() < before.item()
    q = F.softmax(t / 4.0, 1)
    dist = [(F.softmax(z / 4.0, 1) - q).abs().sum().item() for z in (s.detach(), s2)]
    assert dist[1] < dist[0]


# Feature KD -------------------------------------------------------------------------------


def test_feature_kd_identity_matches_numpy_and_averages_over_time():
    s, t = rand(3, 2, 4, 5, 5, seed=1), rand(2, 4, 5, 5, seed=2)
    loss = distill.FeatureKD(4, 4, weight=0.5)
    assert list(loss.parameters()) == []
    expected = 0.5 * np.mean((s.numpy().mean(0) - t.numpy()) ** 2)
    np.testing.assert_allclose(loss(s, t).item(), expected, rtol=1e-9)
    np.testing.assert_allclose(loss(s.mean(0), t).item(), expected, rtol=1e-9)


def test_feature_kd_regressor_is_a_1x1_conv_plus_batchnorm_trained_with_the_student():
    s, t = rand(2, 3, 4, 5, 5, seed=1), rand(3, 6, 5, 5, seed=2)
    loss = distill.FeatureKD(4, 6).double()
    with torch.no_grad():
        loss.regressor[1].weight.copy_(torch.linspace(0.5, 2.0, 6))
        loss.regressor[1].bias.copy_(torch.linspace(-1.0, 1.0, 6))
    got = loss(s, t)
    w = loss.regressor[0].weight.detach().numpy()[:, :, 0, 0]            # [6, 4]
    y = np.einsum("oc,bchw->bohw", w, s.numpy().mean(0))
    mean, var = y.mean(axis=(0, 2, 3), keepdims=True), y.var(axis=(0, 2, 3), keepdims=True)
    gamma, beta = np.linspace(0.5, 2.0, 6)[None, :, None, None], np.linspace(-1, 1, 6)[
        None, :, None, None]
    y = gamma * (y - mean) / np.sqrt(var + 1e-5) + beta
    np.testing.assert_allclose(got.item(), np.mean((y - t.numpy()) ** 2), rtol=1e-7)
    got.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.parameters())


# CAM / Grad-CAM / SAMD --------------------------------------------------------------------


def test_cam_of_a_hand_made_map_and_classifier():
    f = torch.tensor([[[[1.0, 2.0], [0.0, 3.0]],      # channel 0
                       [[4.0, 0.0], [1.0, 1.0]]]])    # channel 1
    w = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]])
    # predicted class 1: relu(0.5 * F0 - F1) = relu([[-3.5, 1], [-1, 0.5]])
    torch.testing.assert_close(distill.cam(f, w, torch.tensor([[0.0, 9.0, 1.0]])),
                               torch.tensor([[[0.0, 1.0], [0.0, 0.5]]]))
    torch.testing.assert_close(distill.cam(f, w, torch.tensor([[0.0, 1.0, 9.0]])),
                               torch.tensor([[[8.0, 0.0], [2.0, 2.0]]]))


@given(seed=st.integers(0, 99), hw=st.sampled_from([(2, 2), (3, 4), (5, 5)]))
def test_grad_cam_equals_cam_up_to_a_positive_factor_for_a_gap_linear_head(seed, hw):
    torch.manual_seed(seed)
    fc = torch.nn.Linear(6, 5).double()
    f = rand(3, 6, *hw, seed=seed).requires_grad_()
    z = fc(f.mean((2, 3)))
    g, c = distill.grad_cam(f, z), distill.cam(f, fc.weight, z)
    # d z_c / d F[d, h, w] = W[c, d] / (H W), so Grad-CAM = CAM / (H W).
    torch.testing.assert_close(g * (hw[0] * hw[1]), c.detach())
    assert f.grad is None


@given(b=st.integers(1, 3), seed=st.integers(0, 99), tau=st.floats(0.5, 4.0),
       variant=st.sampled_from(["paper", "reference"]))
def test_samd_matches_numpy(b, seed, tau, variant):
    m_s = rand(b, 4, 5, seed=seed, scale=3.0).abs()
    m_a = rand(b, 4, 5, seed=seed + 100).abs()
    got = distill.SAMD(tau_s=tau, variant=variant)(m_s, m_a)
    np.testing.assert_allclose(got.item(), np_samd(m_s.numpy(), m_a.numpy(), tau, variant),
                               rtol=1e-8, atol=1e-12)


def test_samd_student_map_sums_time_and_channels_and_teacher_features_give_the_cam():
    spikes = (rand(3, 2, 4, 5, 5, seed=1) > 0).double()
    feats, w, z = rand(2, 6, 5, 5, seed=2).abs(), rand(10, 6, seed=3), rand(2, 10, seed=4)
    loss = distill.SAMD()
    expected = np_samd(spikes.sum((0, 2)).numpy(), distill.cam(feats, w, z).numpy(), 2.0,
                       "paper")
    np.testing.assert_allclose(loss(spikes, feats, z, w).item(), expected, rtol=1e-8)
    np.testing.assert_allclose(loss(spikes.sum(0), feats, z, w).item(), expected, rtol=1e-8)


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_samd_is_zero_for_identical_maps(variant):
    m = rand(3, 4, 4, seed=5)
    assert distill.SAMD(variant=variant)(m.clone(), m).item() == pytest.approx(0.0, abs=1e-12)


@given(scale=st.floats(0.5, 20.0), seed=st.integers(0, 99))
def test_samd_reference_is_invariant_to_a_batch_wide_positive_scaling(scale, seed):
    m_s, m_a = 10 * rand(3, 4, 4, seed=seed).abs(), 10 * rand(3, 4, 4, seed=seed + 1).abs()
    loss = distill.SAMD(variant="reference")
    torch.testing.assert_close(loss(scale * m_s, scale * m_a), loss(m_s, m_a), rtol=1e-3,
                               atol=1e-5)


def test_samd_resizes_the_teacher_map_bilinearly_to_the_student_size():
    m_s, m_a = rand(2, 8, 8, seed=1).abs(), rand(2, 4, 4, seed=2).abs()
    up = F.interpolate(m_a[:, None], size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(distill.SAMD()(m_s, m_a), distill.SAMD()(m_s, up))


# NLD --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_nld_noise_has_the_specified_per_sample_mean_and_variance(variant):
    z = torch.tensor([[0.0, 1.0, 2.0, 5.0], [-3.0, 0.5, 0.5, 1.0], [1.0, 1.2, 0.8, 1.1]],
                     dtype=torch.float64)
    n = 20000
    g = torch.Generator().manual_seed(0)
    eps = distill.nld_noise(z.repeat(n, 1), variant, g).view(n, 3, 4)
    mu, sigma = z.numpy().mean(1), z.numpy().std(1, ddof=1)
    var = sigma**2 if variant == "paper" else sigma**4
    draws = eps.permute(1, 0, 2).reshape(3, -1).numpy()
    assert np.all(np.abs(draws.mean(1) - mu) < 5 * np.sqrt(var / draws.shape[1]))
    np.testing.assert_allclose(draws.var(1), var, rtol=0.04)


def np_nld(z_s, z_a, xi, variant, tau=2.0, c=0.1):
    mu, sigma = z_s.mean(1, keepdims=True), z_s.std(1, ddof=1, keepdims=True)
    if variant == "paper":
        return np_kd(z_s + c * (mu + sigma * xi), z_a, tau)
    p = lambda x: np.exp(np_log_softmax(x / tau))  # noqa: E731
    q = (1 - c) * p(z_s) + c * p(mu + sigma**2 * xi)
    return tau**2 * np.mean(np.sum(p(z_a) * (np.log(p(z_a)) - np.log(q)), axis=1))


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_nld_matches_numpy_with_the_same_noise_and_draws_fresh_noise(variant):
    z_s, z_a = rand(4, 6, seed=1, scale=2.0), rand(4, 6, seed=2, scale=2.0)
    loss = distill.NLD(variant=variant, generator=torch.Generator().manual_seed(7))
    got = loss(z_s, z_a)
    xi = torch.randn(4, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    np.testing.assert_allclose(got.item(), np_nld(z_s.numpy(), z_a.numpy(), xi.numpy(), variant),
                               rtol=1e-9)
    assert loss(z_s, z_a).item() != got.item()


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_nld_gradient_flows_through_the_noise_mean_and_std(variant):
    z_a = rand(3, 5, seed=2)
    z1 = rand(3, 5, seed=1).requires_grad_()
    distill.NLD(variant, generator=torch.Generator().manual_seed(3))(z1, z_a).backward()
    xi = torch.randn(3, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def by_hand(z, detach_stats):
        mu = z.sum(1, keepdim=True) / 5
        sigma = (((z - mu) ** 2).sum(1, keepdim=True) / 4).sqrt()
        if detach_stats:
            mu, sigma = mu.detach(), sigma.detach()
        p_a = torch.softmax(z_a / 2, 1)
        if variant == "paper":
            z_soft = z + 0.1 * (mu + sigma * xi)
            return 4 * (p_a * (p_a.log() - torch.log_softmax(z_soft / 2, 1))).sum() / 3
        q = 0.9 * torch.softmax(z / 2, 1) + 0.1 * torch.softmax((mu + sigma**2 * xi) / 2, 1)
        return 4 * (p_a * (p_a.log() - q.log())).sum() / 3

    grads = []
    for detach in (False, True):
        z = z1.detach().clone().requires_grad_()
        by_hand(z, detach).backward()
        grads.append(z.grad)
    torch.testing.assert_close(z1.grad, grads[0])
    assert not torch.allclose(z1.grad, grads[1])


# Teachers get no gradient -----------------------------------------------------------------


def _teacher_cases():
    def kd():
        t = rand(4, 10, seed=1).requires_grad_()
        return distill.KD()(rand(4, 10, seed=2).requires_grad_(), t), [t]

    def feature():
        t = rand(2, 8, 3, 3, seed=1).requires_grad_()
        return distill.FeatureKD(4, 8).double()(rand(2, 2, 4, 3, 3).requires_grad_(), t), [t]

    def samd_cam():
        f, w, z = (rand(2, 6, 4, 4, seed=1).requires_grad_(), rand(10, 6).requires_grad_(),
                   rand(2, 10, seed=3).requires_grad_())
        s = rand(3, 2, 4, 4, 4, seed=4).requires_grad_()
        return distill.SAMD()(s, f, z, w), [f, w, z]

    def samd_gradcam():
        f, fc = rand(2, 6, 4, 4, seed=1).requires_grad_(), torch.nn.Linear(6, 10).double()
        z = fc(f.mean((2, 3)))
        s = rand(3, 2, 4, 4, 4, seed=4).requires_grad_()
        return distill.SAMD(cam="gradcam")(s, f, z), [f, fc.weight, fc.bias]

    def nld(variant):
        t = rand(4, 10, seed=1).requires_grad_()
        return distill.NLD(variant)(rand(4, 10, seed=2).requires_grad_(), t), [t]

    return {"kd": kd, "feature_kd": feature, "samd_cam": samd_cam, "samd_gradcam": samd_gradcam,
            "nld_paper": lambda: nld("paper"), "nld_reference": lambda: nld("reference")}


@pytest.mark.parametrize("case", sorted(_teacher_cases()))
def test_teacher_tensors_receive_no_gradient(case):
    loss, teacher = _teacher_cases()[case]()
    assert loss.requires_grad
    loss.backward()
    for t in teacher:
        assert t.grad is None or not t.grad.any()


# Joint A-SNN ------------------------------------------------------------------------------


def _joint_outputs(seed, b=3, k=5, widths=(8, 4, 4, 6)):
    def out(s):
        return JointOutput([rand(b, k, seed=s + i, scale=2.0).requires_grad_() for i in range(4)],
                           [rand(b, c, seed=s + 10 + i).requires_grad_()
                            for i, c in enumerate(widths)])
    labels = torch.randint(0, k, (b,), generator=torch.Generator().manual_seed(seed))
    return out(seed), out(seed + 50), labels


@given(seed=st.integers(0, 99), alpha=st.floats(0.0, 1.0), beta=st.floats(0.0, 1.0))
def test_joint_asnn_loss_is_the_sum_of_its_documented_terms(seed, alpha, beta):
    ann, snn, labels = _joint_outputs(seed)
    parts = distill.JointASNNLoss(alpha, beta, temperature=3.0).components(ann, snn, labels)
    a = [z.detach().numpy() for z in ann.logits]
    s = [z.detach().numpy() for z in snn.logits]
    y = labels.numpy()
    ce = sum(-np.mean(np_log_softmax(z)[np.arange(len(y)), y]) for z in a + s)
    self_kd = sum(np_soft_ce(a[i], a[0], 3.0) for i in (1, 2, 3))
    ann_snn = sum(np_soft_ce(s[i], a[i], 3.0) for i in range(4))
    feature = 0.0
    for fs, fa in zip(snn.features, ann.features, strict=True):
        fs, fa = fs.detach().numpy(), fa.detach().numpy()
        feature += np.sum(np.where((fs > 0) | (fa > 0), (fs - fa) ** 2, 0.0))
    expected = {"ce": ce, "self_kd": self_kd, "ann_snn_kd": ann_snn, "feature": feature,
                "loss": (1 - alpha) * ce + alpha * (self_kd + ann_snn) + beta * feature}
    for name, value in expected.items():
        np.testing.assert_allclose(parts[name].item(), value, rtol=1e-9, err_msg=name)


def test_joint_asnn_ann_outputs_get_only_ce_and_self_distillation_gradients():
    ann, snn, labels = _joint_outputs(3)
    distill.JointASNNLoss(alpha=0.3, beta=0.01)(ann, snn, labels).backward()
    ref = [z.detach().clone().requires_grad_() for z in ann.logits]
    ce = sum(F.cross_entropy(z, labels) for z in ref)
    p0 = torch.softmax(ref[0].detach() / 3, 1)
    self_kd = sum(-9 * (p0 * torch.log_softmax(z / 3, 1)).sum(1).mean() for z in ref[1:])
    (0.7 * ce + 0.3 * self_kd).backward()
    for got, want in zip(ann.logits, ref, strict=True):
        torch.testing.assert_close(got.grad, want.grad)
    assert all(f.grad is None for f in ann.features)
    assert all(z.grad is not None and z.grad.any() for z in [*snn.logits, *snn.features])


# Bad inputs -------------------------------------------------------------------------------


def test_bad_inputs_raise_value_errors_naming_the_problem():
    z = torch.randn(2, 5)
    with pytest.raises(ValueError, match="logits of one shape"):
        distill.KD()(z, torch.randn(2, 6))
    with pytest.raises(ValueError, match="temperature"):
        distill.KD(temperature=0.0)
    with pytest.raises(ValueError, match="unknown variant"):
        distill.NLD(variant="nope")
    with pytest.raises(ValueError, match="unknown variant"):
        distill.SAMD(variant="nope")
    with pytest.raises(ValueError, match="unknown cam"):
        distill.SAMD(cam="nope")
    with pytest.raises(ValueError, match="noise"):
        distill.NLD(noise=1.0)
    with pytest.raises(ValueError, match="classes >= 2"):
        distill.nld_noise(torch.randn(2, 1))
    fkd = distill.FeatureKD(4, 8)
    with pytest.raises(ValueError, match="student features"):
        fkd(torch.randn(2, 3, 5, 5), torch.randn(2, 8, 5, 5))
    with pytest.raises(ValueError, match="teacher features"):
        fkd(torch.randn(2, 4, 5, 5), torch.randn(2, 7, 5, 5))
    with pytest.raises(ValueError, match="spatial size"):
        fkd(torch.randn(2, 4, 5, 5), torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match="one batch"):
        distill.SAMD()(torch.rand(2, 4, 4), torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="need teacher_logits"):
        distill.SAMD()(torch.rand(2, 4, 4), torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="fc_weight"):
        distill.SAMD()(torch.rand(2, 4, 4), torch.rand(2, 3, 4, 4), torch.rand(2, 10))
    with pytest.raises(ValueError, match="fc_weight"):
        distill.cam(torch.rand(2, 3, 4, 4), torch.rand(10, 4), torch.rand(2, 10))
    with pytest.raises(ValueError, match="autograd"):
        distill.grad_cam(torch.rand(2, 3, 4, 4), torch.rand(2, 10))
    ann, snn, labels = _joint_outputs(0)
    short = JointOutput(snn.logits[:3], snn.features[:3])
    with pytest.raises(ValueError, match="equally many"):
        distill.JointASNNLoss()(ann, short, labels)
    with pytest.raises(ValueError, match="labels"):
        distill.JointASNNLoss()(ann, snn, labels[:2])
    with pytest.raises(ValueError, match="alpha"):
        distill.JointASNNLoss(alpha=1.5)
