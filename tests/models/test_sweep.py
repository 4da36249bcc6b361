"""Every registered head with every registered sampler kind: one training forward and backward on tiny tensors."""
from __future__ import annotations

import pytest
import torch

from stsampler.config import config_from_dict
from stsampler.engine.builder import build_model
from stsampler.models.heads import HEADS
from stsampler.samplers import SAMPLERS

WAY, SHOT, QUERY, M, T, SIZE, CLASSES = 2, 1, 1, 6, 3, 32, 4
HEAD_ARGS = {"trx": {"proj_dim": 8}}  # small projections keep the sweep fast


def tiny_model(head: str, kind: str):
    """A recogniser of the small CNN at 32 px; the oracle only needs a metadata path (the dataset reads it)."""
    data = {"split_dir": "unused", "num_frames": M, "crop_size": SIZE, "resize_short": SIZE}
    if kind == "oracle":
        data["metadata"] = "fake/metadata.json"
    cfg = config_from_dict({
        "data": data,
        "sampler": {"kind": kind, "num_frames": T, "scanner_pretrained": False, "num_samples": 8},
        "model": {"backbone": "smallcnn", "pretrained": False, "head": head, "head_args": HEAD_ARGS.get(head, {})},
    })
    torch.manual_seed(0)
    return build_model(cfg, CLASSES)


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
@pytest.mark.parametrize("head", sorted(HEADS))
def test_forward_and_backward(head: str, kind: str) -> None:
    model = tiny_model(head, kind).train()
    if hasattr(model.sampler, "generator"):
        model.sampler.generator = torch.Generator().manual_seed(0)
    videos = WAY * (SHOT + QUERY)
    clips = torch.randn(videos, M, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    is_support = torch.arange(videos) < WAY * SHOT
    labels = torch.arange(WAY).repeat(SHOT + QUERY)
    output = model(clips, is_support, labels[: WAY * SHOT], WAY)
    assert output.logits.shape == (WAY * QUERY, WAY) and torch.isfinite(output.logits).all()
    loss, parts = model.loss(output, labels[WAY * SHOT :], labels)
    loss.backward()
    assert torch.isfinite(loss) and parts["aux"] > 0
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert grads["aux_classifier.weight"].abs().sum() > 0
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith("backbone."))
    if kind == "learned":
        assert model.sampler.scanner.stem[0].weight.grad.abs().sum() > 0
        assert model.sampler.selector.w1.weight.grad.abs().sum() > 0
