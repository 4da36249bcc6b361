"""Frame backbones: output sizes, channels_last, weight loading and errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from stsampler.errors import CheckpointError, ConfigError
from stsampler.models.backbones import BACKBONES, CoordinateChannels, build_backbone


def test_registry_names() -> None:
    assert set(BACKBONES) == {"resnet18", "resnet34", "resnet50", "smallcnn", "smallcnn_max", "smallcnn_max_coords"}


@pytest.mark.parametrize(
    ("name", "out_dim"), [("smallcnn", 256), ("smallcnn_max", 256), ("smallcnn_max_coords", 256), ("resnet18", 512)]
)
def test_output_size(name: str, out_dim: int) -> None:
    backbone = build_backbone(name).eval()
    assert backbone.out_dim == out_dim
    with torch.no_grad():
        assert backbone(torch.randn(3, 3, 64, 64)).shape == (3, out_dim)


def test_coordinate_channels_append_x_then_y() -> None:
    frames = torch.randn(2, 3, 4, 5)
    out = CoordinateChannels()(frames)
    assert out.shape == (2, 5, 4, 5)
    torch.testing.assert_close(out[:, :3], frames)
    torch.testing.assert_close(out[1, 3, 2], torch.linspace(-1, 1, 5))
    torch.testing.assert_close(out[1, 4, :, 3], torch.linspace(-1, 1, 4))


def test_coords_backbone_tells_where_an_object_is_and_the_plain_one_does_not() -> None:
    """The same bright square on a dark frame, moved by the backbone's stride (16 px): the max-pooled small
    CNN gives the same embedding, the one with coordinate channels two different ones."""
    frames = torch.zeros(2, 3, 64, 64)
    frames[0, :, 8:12, 8:12] = 1.0
    frames[1, :, 40:44, 40:44] = 1.0
    distance = {}
    for name in ("smallcnn_max", "smallcnn_max_coords"):
        torch.manual_seed(0)
        backbone = build_backbone(name).eval()
        with torch.no_grad():
            for conv in [m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d)]:
                conv.weight.normal_()
            first, second = backbone(frames)
        distance[name] = ((first - second).norm() / first.norm()).item()
    assert distance["smallcnn_max"] < 1e-4
    assert distance["smallcnn_max_coords"] > 0.1


def test_resnet50_is_the_pooled_conv5_trunk() -> None:
    backbone = build_backbone("resnet50")
    assert backbone.out_dim == 2048 and isinstance(backbone.trunk.fc, torch.nn.Identity)


def test_smallcnn_gradients_reach_every_parameter() -> None:
    backbone = build_backbone("smallcnn")
    backbone(torch.randn(2, 3, 32, 32)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters())


@pytest.mark.parametrize("name", ["smallcnn", "smallcnn_max_coords", "resnet18"])
def test_weights_and_inputs_are_channels_last(name: str) -> None:
    backbone = build_backbone(name).eval()
    convs = [m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    seen = []
    convs[0].register_forward_hook(lambda module, args, out: seen.append(args[0]))
    frames = torch.randn(2, 3, 32, 32)
    assert frames.is_contiguous() and not frames.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        backbone(frames)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ConfigError, match="resnet18, resnet34, resnet50, smallcnn, smallcnn_max, smallcnn_max_coords"):
        build_backbone("vgg16")


def test_invalid_weight_options() -> None:
    with pytest.raises(ConfigError, match="no pretrained"):
        build_backbone("smallcnn", pretrained=True)
    with pytest.raises(ConfigError, match="not both"):
        build_backbone("resnet18", pretrained=True, weights_path="x.pth")


def test_weights_path_loads_a_smallcnn_state_dict(tmp_path: Path) -> None:
    source = build_backbone("smallcnn")
    for parameter in source.parameters():
        torch.nn.init.normal_(parameter)
    torch.save(source.trunk.state_dict(), tmp_path / "small.pth")
    loaded = build_backbone("smallcnn", weights_path=tmp_path / "small.pth")
    for key, value in source.trunk.state_dict().items():
        torch.testing.assert_close(loaded.trunk.state_dict()[key], value)


def test_weights_path_loads_a_torchvision_file_and_ignores_its_classifier(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    torch.manual_seed(2)
    backbone = build_backbone("resnet18", weights_path=str(tmp_path / "resnet18.pth"))
    torch.testing.assert_close(backbone.trunk.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(backbone.trunk.layer4[1].bn2.running_mean, reference.layer4[1].bn2.running_mean)


def test_pretrained_uses_torchvision_weights_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A file already in the torch hub cache is used without any download.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(3)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), cache / Path(weights.url).name)
    backbone = build_backbone("resnet18", pretrained=True)
    torch.testing.assert_close(backbone.trunk.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)


def test_mismatched_weights_file_raises_checkpoint_error(tmp_path: Path) -> None:
    torch.save(build_backbone("smallcnn").trunk.state_dict(), tmp_path / "small.pth")
    with pytest.raises(CheckpointError, match="missing keys"):
        build_backbone("resnet18", weights_path=tmp_path / "small.pth")
    state = build_backbone("smallcnn").trunk.state_dict()
    state["0.0.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(CheckpointError, match=r"1 keys of another shape \['0.0.weight'\]"):
        build_backbone("smallcnn", weights_path=tmp_path / "narrow.pth")


def test_missing_or_foreign_weights_file_raises_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        build_backbone("smallcnn", weights_path=tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or not a torch file"):
        build_backbone("smallcnn", weights_path=tmp_path / "junk.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state_dict"):
        build_backbone("smallcnn", weights_path=tmp_path / "list.pth")


def test_max_pooling_keeps_a_small_object_that_average_pooling_dilutes() -> None:
    torch.manual_seed(0)
    avg, peak = build_backbone("smallcnn").eval(), build_backbone("smallcnn_max").eval()
    peak.load_state_dict(avg.state_dict())
    empty = torch.zeros(1, 3, 96, 96)
    spot = empty.clone()
    spot[:, 0, 40:52, 40:52] = 3.0
    change_avg = (avg(spot) - avg(empty)).abs().max()
    change_max = (peak(spot) - peak(empty)).abs().max()
    assert change_max > 2 * change_avg


def test_no_network_names_the_weights_file_the_folder_and_the_ways_out(tmp_path: Path, monkeypatch) -> None:
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty cache
    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(CheckpointError) as info:
        build_backbone("resnet18", pretrained=True)
    message = str(info.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "model.weights_path=" in message
    assert "model.pretrained=false sampler.scanner_pretrained=false" in message
