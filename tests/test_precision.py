"""The loss runs in float32 under bf16 autocast (issue 12, item 2): normalisation, similarities,
logits and cross-entropy. The official code (TS, SDCLR, BCL) is float32 throughout; a bf16 similarity
matrix at tau 0.07 put the NT-Xent gradient 2.5 % off."""

import pytest
import torch

from methods.losses import contrastive_cross_entropy, cosine_similarity_matrix, info_nce_per_query, nt_xent, queue_similarities


def _projections(seed: int = 0, n: int = 64, d: int = 128):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator), torch.randn(n, d, generator=generator)


def _loss_and_grad(loss_fn, *inputs, autocast: bool):
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = loss_fn(*leaves)
    loss.backward()
    return loss.detach(), torch.cat([x.grad.flatten() for x in leaves])


@pytest.mark.parametrize("tau", [0.07, 0.1, 0.2])
def test_nt_xent_under_bf16_autocast_equals_fp32(tau):
    z0, z1 = _projections()
    loss32, grad32 = _loss_and_grad(lambda a, b: nt_xent(a, b, tau), z0, z1, autocast=False)
    loss16, grad16 = _loss_and_grad(lambda a, b: nt_xent(a, b, tau), z0, z1, autocast=True)
    assert loss16.dtype == torch.float32
    assert abs(loss16 - loss32) / abs(loss32) < 1e-4
    assert (grad16 - grad32).norm() / grad32.norm() < 1e-4


def test_the_matrix_and_logits_are_float32_under_autocast():
    z0, z1 = _projections()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        # A bf16 projection (what a head under autocast returns) still gives float32 similarities.
        similarities = cosine_similarity_matrix(z0.bfloat16(), z1.bfloat16())
        queue = queue_similarities(z0.bfloat16(), z1.bfloat16(), torch.nn.functional.normalize(z1, dim=1))
        per_row = contrastive_cross_entropy(similarities, torch.tensor(0.07), torch.zeros(128, dtype=torch.long))
    assert similarities.dtype == queue.dtype == per_row.dtype == torch.float32


def test_moco_infonce_under_bf16_autocast_equals_fp32():
    q, k = _projections(1)
    negatives = torch.nn.functional.normalize(torch.randn(256, 128, generator=torch.Generator().manual_seed(2)), dim=1)

    def loss_fn(a, b):
        return info_nce_per_query(queue_similarities(a, b, negatives), 0.07).mean()

    loss32, grad32 = _loss_and_grad(loss_fn, q, k, autocast=False)
    loss16, grad16 = _loss_and_grad(loss_fn, q, k, autocast=True)
    assert abs(loss16 - loss32) / abs(loss32) < 1e-4
    assert (grad16 - grad32).norm() / grad32.norm() < 1e-4


def test_resnet18_cifar_is_initialised_as_ts_and_sdclr():
    """TS / SDCLR models/resnet.py: Kaiming-normal fan-out convs, BN (1, 0), zero_init_residual=False
    (issue 12, item 8); timm's default would zero every block's last BN gamma."""
    import math

    from bench.backbones import create_backbone

    torch.manual_seed(0)
    model, _ = create_backbone("resnet18_cifar")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bool((bn.weight == 1).all()) and bool((bn.bias == 0).all()) for bn in bns)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]:
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        expected = math.sqrt(2.0 / fan_out)  # Kaiming normal, fan_out, ReLU gain
        assert abs(conv.weight.std().item() / expected - 1) < 0.15, conv
