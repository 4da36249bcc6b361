"""Scanner: shapes, no max-pool, frozen batch norm, no downloads without pretrained weights."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from stsampler.config import SMALL_CNN_BACKBONES, SamplerConfig, SamplerExperiments
from stsampler.errors import ConfigError
from stsampler.models.backbones import BACKBONES, build_backbone
from stsampler.samplers.scanner import Scanner, build_scanner, rename_earlier_keys


def make(**kwargs: object) -> Scanner:
    options = {"arch": "shufflenet_v2_x0_5", "pretrained": False, "scan_size": 64, "freeze_bn": True} | kwargs
    return Scanner(**options)


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    torch.manual_seed(0)
    return make().eval()


def test_shapes_at_scan_size(scanner: Scanner) -> None:
    out = scanner(torch.randn(3, 3, 64, 64))
    assert out.features.shape == (3, scanner.out_dim) == (3, 1024)
    assert [m.shape[1] for m in out.maps] == scanner.map_channels == [48, 96, 192]
    assert [tuple(m.shape[-2:]) for m in out.maps] == [(16, 16), (8, 8), (4, 4)]


def test_input_is_resized_to_scan_size(scanner: Scanner) -> None:
    frames = torch.randn(2, 3, 64, 64)
    big = torch.nn.functional.interpolate(frames, size=(128, 128), mode="nearest")
    out = scanner(big)
    assert out.features.shape == (2, 1024)
    assert tuple(out.maps[0].shape[-2:]) == (16, 16)


def test_other_scan_size_keeps_map_size() -> None:
    out = make(scan_size=96, map_size=16).eval()(torch.randn(1, 3, 96, 96))
    assert tuple(out.maps[0].shape[-2:]) == (16, 16)
    assert tuple(out.maps[1].shape[-2:]) == (12, 12)


def test_maxpool_removed(scanner: Scanner) -> None:
    assert not any(isinstance(m, nn.MaxPool2d) for m in scanner.modules())
    assert not hasattr(scanner, "fc")


def test_channels_last_matches(scanner: Scanner) -> None:
    frames = torch.randn(2, 3, 64, 64)
    ref = scanner(frames).features
    cl = scanner.to(memory_format=torch.channels_last)(frames.to(memory_format=torch.channels_last)).features
    scanner.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-5)


def test_frozen_batch_norm_makes_frames_independent() -> None:
    scanner = make().train()
    assert scanner.training
    assert all(not m.training for m in scanner.modules() if isinstance(m, nn.BatchNorm2d))
    frames = torch.randn(4, 3, 64, 64)
    torch.testing.assert_close(scanner(frames[:2]).features, scanner(frames).features[:2])
    unfrozen = make(freeze_bn=False).train()
    assert any(m.training for m in unfrozen.modules() if isinstance(m, nn.BatchNorm2d))


def test_no_download_without_pretrained(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    make(pretrained=False)
    with pytest.raises(AssertionError, match="download"):
        make(pretrained=True)


def test_unknown_arch() -> None:
    with pytest.raises(ConfigError):
        make(arch="resnet18")


def test_a_shared_backbone_is_one_set_of_weights_for_scanner_and_recogniser() -> None:
    torch.manual_seed(0)
    scanner = make(arch="smallcnn", freeze_bn=False)
    backbone = build_backbone("smallcnn_max")
    scanner.share_backbone(backbone)
    assert [scanner.stem, *scanner.stages] == list(backbone.trunk)[:4]
    frames = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(scanner(frames).features, backbone(frames))  # both: the global max of block 4
    backbone(frames).sum().backward()  # a loss of the recogniser alone trains the scanner's first block
    assert scanner.stem[0].weight.grad is not None and scanner.stem[0].weight.grad.abs().sum() > 0


def test_a_shared_backbone_with_coordinates_is_scanned_without_position() -> None:
    """The recogniser's embedding depends on the weights of its position inputs; the scan (features and
    maps) does not: the scanner feeds those inputs zeros, and otherwise runs the same blocks."""
    torch.manual_seed(0)
    scanner = make(arch="smallcnn", freeze_bn=False).eval()
    backbone = build_backbone("smallcnn_max_coords").eval()
    scanner.share_backbone(backbone)
    assert [scanner.stem, *scanner.stages] == list(backbone.trunk)[1:5]
    frames = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        scan, embedding = scanner(frames), backbone(frames)
        scanner.stem[0].weight[:, 3:].normal_()
        rescan = scanner(frames)
        torch.testing.assert_close(rescan.features, scan.features, rtol=0, atol=0)
        for new, old in zip(rescan.maps, scan.maps, strict=True):
            torch.testing.assert_close(new, old, rtol=0, atol=0)
        assert not torch.allclose(backbone(frames), embedding)
        scanner.stem[0].weight[:, 3:] = 0.0  # without position inputs the backbone computes the scan's features
        torch.testing.assert_close(backbone(frames), scan.features)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_the_config_names_exactly_the_backbones_a_small_cnn_scanner_can_share(name: str) -> None:
    """``SMALL_CNN_BACKBONES`` (what the config accepts) and ``share_backbone`` (what works) agree on every backbone."""
    scanner = make(arch="smallcnn", freeze_bn=False)
    if name in SMALL_CNN_BACKBONES:
        scanner.share_backbone(build_backbone(name))
    else:
        with pytest.raises(ConfigError, match="scanner_shares_backbone"):
            scanner.share_backbone(build_backbone(name))


def test_a_shufflenet_scanner_cannot_share_a_backbone() -> None:
    with pytest.raises(ConfigError, match="scanner_shares_backbone"):
        make().share_backbone(build_backbone("smallcnn_max"))


@pytest.mark.parametrize(
    ("pretrained", "setting", "frozen"), [(False, None, False), (True, None, True), (False, True, True)]
)
def test_builder_freezes_batch_norm_of_a_pretrained_scanner_by_default(
    monkeypatch: pytest.MonkeyPatch, pretrained: bool, setting: bool | None, frozen: bool
) -> None:
    monkeypatch.setattr("torchvision.models.get_model_weights", lambda arch: None if not pretrained else _NoWeights)
    cfg = SamplerConfig(
        scanner_pretrained=pretrained, scan_size=48, experimental=SamplerExperiments(scanner_freeze_bn=setting)
    )
    scanner = build_scanner(cfg)
    assert scanner.freeze_bn is frozen and scanner.scan_size == 48


class _NoWeights:
    """Stands in for torchvision's weight enum: ``IMAGENET1K_V1`` is None, so nothing downloads."""

    IMAGENET1K_V1 = None


def test_no_network_names_the_scanner_weights_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error

    from stsampler.errors import CheckpointError

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty cache
    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(CheckpointError) as info:
        build_scanner(SamplerConfig(scanner_pretrained=True))
    message = str(info.value)
    assert "shufflenetv2_x0.5" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "sampler.scanner_pretrained=false" in message


def test_smallcnn_scanner_shapes_and_max_pooled_feature() -> None:
    torch.manual_seed(0)
    scanner = make(arch="smallcnn", freeze_bn=False).eval()
    frames = torch.randn(3, 3, 96, 96)
    out = scanner(frames)
    assert out.features.shape == (3, scanner.out_dim) == (3, 256)
    assert [m.shape[1] for m in out.maps] == scanner.map_channels == [64, 128, 256]
    assert [tuple(m.shape[-2:]) for m in out.maps] == [(16, 16), (8, 8), (4, 4)]
    torch.testing.assert_close(out.features, out.maps[-1].amax(dim=(2, 3)))


def test_smallcnn_scanner_has_no_pretrained_weights() -> None:
    with pytest.raises(ConfigError, match="scanner_pretrained"):
        make(arch="smallcnn", pretrained=True)


def test_smallcnn_scanner_is_built_from_config() -> None:
    scanner = build_scanner(SamplerConfig(scanner_arch="smallcnn", scanner_pretrained=False))
    assert scanner.out_dim == 256 and not scanner.freeze_bn


def test_earlier_scanner_keys_are_renamed() -> None:
    a, b, c, d, e = (torch.full((1,), float(i)) for i in range(5))
    earlier = {
        "sampler.scanner.conv1.0.weight": a, "sampler.scanner.stage3.1.branch2.0.weight": b,
        "sampler.scanner.conv5.1.running_mean": c, "backbone.conv1.weight": d, "sampler.selector.w2": e,
    }
    renamed = rename_earlier_keys(earlier)
    assert renamed == {
        "sampler.scanner.stem.0.weight": a, "sampler.scanner.stages.1.1.branch2.0.weight": b,
        "sampler.scanner.head.1.running_mean": c, "backbone.conv1.weight": d, "sampler.selector.w2": e,
    }
    assert rename_earlier_keys(renamed) == renamed  # current names stay as they are


def test_a_checkpoint_file_with_earlier_scanner_keys_is_read_at_current_names(tmp_path) -> None:
    from stsampler.engine.checkpoint import load_checkpoint

    weight = torch.randn(24, 3, 3, 3)
    path = tmp_path / "old.pt"
    torch.save({"model": {"sampler.scanner.conv1.0.weight": weight}, "config": {}}, path)
    state = load_checkpoint(path)
    assert list(state["model"]) == ["sampler.scanner.stem.0.weight"]
    torch.testing.assert_close(state["model"]["sampler.scanner.stem.0.weight"], weight)
