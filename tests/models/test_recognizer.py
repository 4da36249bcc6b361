"""The recogniser: shapes, scan-feature concatenation, losses, gradients and query independence."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stsampler.errors import ConfigError
from stsampler.models.backbones import build_backbone
from stsampler.models.heads import build_head
from stsampler.models.recognizer import FewShotRecognizer, split_rows
from stsampler.samplers.base import FrameSampler, SamplerOutput

WAY, SHOTS, QUERIES, DENSE, SIZE, TRAIN_CLASSES = 3, 2, 2, 6, 32, 7


class FixedSampler(FrameSampler):
    """Takes the dense frames at fixed indices, times a learnable gain; optionally a scan feature."""

    def __init__(self, indices: list[int], feature_dim: int = 0) -> None:
        super().__init__()
        self.register_buffer("frame_indices", torch.tensor(indices))
        self.num_frames = len(indices)
        self.feature_dim = feature_dim
        self.gain = nn.Parameter(torch.ones(()))
        self.project = nn.Linear(3, feature_dim) if feature_dim else None

    def forward(self, clips: torch.Tensor, is_support: torch.Tensor) -> SamplerOutput:
        frames = clips[:, self.frame_indices] * self.gain
        indices = self.frame_indices.expand(clips.shape[0], -1)
        if self.project is None:
            return SamplerOutput(frames=frames, indices=indices)
        per_frame = self.project(clips.mean(dim=(3, 4)))
        return SamplerOutput(frames=frames, indices=indices, video_feature=per_frame.mean(1), frame_features=per_frame)


def make_recognizer(
    head: str = "protonet",
    feature_dim: int = 4,
    concat: bool = True,
    input_size: int | None = None,
    scan_aux_weight: float = 0.0,
) -> FewShotRecognizer:
    torch.manual_seed(0)
    sampler = FixedSampler([0, 2, 5], feature_dim)
    backbone = build_backbone("smallcnn")
    embed_dim = backbone.out_dim + (feature_dim if concat else 0)
    options = {"proj_dim": 8} if head == "trx" else {}
    return FewShotRecognizer(
        sampler, backbone, build_head(head, embed_dim, 3, **options), TRAIN_CLASSES, concat_scan_feature=concat,
        input_size=input_size, scan_aux_weight=scan_aux_weight,
    )


def make_episode() -> dict[str, torch.Tensor]:
    """Support first (class-major), then queries, as collate_episode gives them."""
    generator = torch.Generator().manual_seed(0)
    num_support, num_query = WAY * SHOTS, WAY * QUERIES
    labels = torch.cat([torch.arange(WAY).repeat_interleave(SHOTS), torch.arange(WAY).repeat_interleave(QUERIES)])
    return {
        "clips": torch.randn(num_support + num_query, DENSE, 3, SIZE, SIZE, generator=generator),
        "labels": labels,
        "class_ids": labels * 2 + 1,
        "is_support": torch.arange(num_support + num_query) < num_support,
    }


def run(model: FewShotRecognizer, episode: dict[str, torch.Tensor]):
    support = episode["is_support"]
    return model(episode["clips"], support, episode["labels"][support], WAY)


@pytest.mark.parametrize("head", ["protonet", "otam", "trx"])
def test_shapes_loss_and_gradients(head: str) -> None:
    model = make_recognizer(head).train()
    episode = make_episode()
    output = run(model, episode)
    batch = episode["clips"].shape[0]
    assert model.embed_dim == 256 + 4
    assert output.logits.shape == (WAY * QUERIES, WAY)
    assert output.embeddings.shape == (batch, 3, model.embed_dim)
    assert output.aux_logits.shape == (batch, TRAIN_CLASSES)
    assert output.sampler_output.frames.shape == (batch, 3, 3, SIZE, SIZE)
    query = ~episode["is_support"]
    loss, parts = model.loss(output, episode["labels"][query], episode["class_ids"])
    assert set(parts) == {"ce", "aux", "scan"} and all(isinstance(v, torch.Tensor) for v in parts.values())
    assert float(parts["scan"]) == 0.0  # no scan classifier
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, parts["ce"] + 0.1 * parts["aux"])
    loss.backward()
    checked = {
        "sampler gain": model.sampler.gain,
        "sampler projection": model.sampler.project.weight,
        "backbone first conv": model.backbone.trunk[0][0].weight,
        "aux classifier": model.aux_classifier.weight,
        **{f"head {n}": p for n, p in model.head.named_parameters()},
    }
    for name, parameter in checked.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_eval_mode_has_no_aux_logits_and_loss_needs_them_for_class_ids() -> None:
    model = make_recognizer().eval()
    episode = make_episode()
    with torch.no_grad():
        output = run(model, episode)
    assert output.aux_logits is None
    query_labels = episode["labels"][~episode["is_support"]]
    loss, parts = model.loss(output, query_labels)
    assert parts["aux"].item() == 0.0 and loss.item() == pytest.approx(parts["ce"].item())
    with pytest.raises(ValueError, match="aux_logits"):
        model.loss(output, query_labels, episode["class_ids"])


def test_scan_feature_is_appended_to_every_frame() -> None:
    model = make_recognizer().eval()
    episode = make_episode()
    with torch.no_grad():
        output = run(model, episode)
    feature = output.sampler_output.video_feature
    torch.testing.assert_close(output.embeddings[..., 256:], feature.unsqueeze(1).expand(-1, 3, -1))
    with torch.no_grad():
        frames = output.sampler_output.frames.flatten(0, 1)
        torch.testing.assert_close(output.embeddings[..., :256], model.backbone(frames).view(-1, 3, 256))


def test_without_concatenation_the_embedding_is_the_backbone_output() -> None:
    model = make_recognizer(concat=False).eval()
    assert model.embed_dim == 256
    with torch.no_grad():
        assert run(model, make_episode()).embeddings.shape[-1] == 256


@pytest.mark.parametrize(("input_size", "antialias"), [(16, True), (48, False)])
def test_frames_reach_the_backbone_at_the_input_size(input_size: int, antialias: bool) -> None:
    model = make_recognizer(input_size=input_size).eval()
    seen = []
    model.backbone.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape))
    episode = make_episode()
    with torch.no_grad():
        output = run(model, episode)
        frames = output.sampler_output.frames.flatten(0, 1)
        resized = F.interpolate(frames, size=(input_size, input_size), mode="bilinear", antialias=antialias)
        expected = model.backbone(resized).view(-1, 3, 256)
    assert frames.shape[-1] == SIZE
    assert seen[0] == (len(frames), 3, input_size, input_size)
    torch.testing.assert_close(output.embeddings[..., :256], expected)


@pytest.mark.parametrize("input_size", [None, SIZE])
def test_frames_at_the_input_size_reach_the_backbone_unchanged(input_size: int | None) -> None:
    model = make_recognizer(input_size=input_size)
    frames = torch.randn(4, 3, SIZE, SIZE)
    assert model.resize(frames) is frames


def test_head_of_the_wrong_size_is_rejected() -> None:
    sampler = FixedSampler([0, 1], feature_dim=4)
    with pytest.raises(ConfigError, match="dimension 260"):
        FewShotRecognizer(sampler, build_backbone("smallcnn"), build_head("protonet", 256, 2), TRAIN_CLASSES)


def test_embed_and_classify_reproduce_forward() -> None:
    model = make_recognizer("otam").eval()
    episode = make_episode()
    support = episode["is_support"]
    with torch.no_grad():
        output = run(model, episode)
        embeddings = model.embed(episode["clips"], support)
        logits = model.classify(embeddings[support], episode["labels"][support], embeddings[~support], WAY)
    torch.testing.assert_close(embeddings, output.embeddings)
    torch.testing.assert_close(logits, output.logits)


@pytest.mark.parametrize("concat", [True, False])
def test_embed_frames_matches_embed_on_the_same_selected_frames(concat: bool) -> None:
    model = make_recognizer(concat=concat).eval()
    episode = make_episode()
    with torch.no_grad():
        sampled = model.sampler(episode["clips"], episode["is_support"])
        direct = model.embed_frames(sampled.frames, sampled.video_feature)
        expected = model.embed(episode["clips"], episode["is_support"])
    assert direct.shape == (episode["clips"].shape[0], 3, model.embed_dim)
    torch.testing.assert_close(direct, expected)


def test_embed_frames_needs_the_scan_feature_when_concatenating() -> None:
    model = make_recognizer().eval()
    frames = make_episode()["clips"][:, :3]
    with pytest.raises(ValueError, match="video_feature=None"):
        model.embed_frames(frames, None)


@pytest.mark.parametrize("head", ["protonet", "trx"])
def test_query_logits_follow_the_queries_and_ignore_other_queries(head: str) -> None:
    model = make_recognizer(head).eval()
    episode = make_episode()
    with torch.no_grad():
        logits = run(model, episode).logits
        num_support = WAY * SHOTS
        # interleave: queries in reverse order, mixed in between support rows (support order kept)
        query_order = torch.arange(WAY * QUERIES).flip(0)
        rows = torch.cat([torch.arange(num_support), num_support + query_order])
        rows = rows[torch.tensor([0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11])]
        shuffled = {key: value[rows] for key, value in episode.items()}
        shuffled_logits = run(model, shuffled).logits
        torch.testing.assert_close(shuffled_logits, logits[query_order])
        one_query = {key: value[: num_support + 1] for key, value in episode.items()}
        torch.testing.assert_close(run(model, one_query).logits, logits[:1])


def test_scan_classifier_reads_the_scan_features_of_every_frame_max_pooled_over_time() -> None:
    model = make_recognizer(scan_aux_weight=0.5).train()
    assert make_recognizer().scan_classifier is None
    episode = make_episode()
    clips = episode["clips"].requires_grad_(True)
    output = run(model, episode)
    frame_features = output.sampler_output.frame_features
    torch.testing.assert_close(output.scan_logits, model.scan_classifier(frame_features.amax(dim=1)))
    query = ~episode["is_support"]
    loss, parts = model.loss(output, episode["labels"][query], episode["class_ids"])
    torch.testing.assert_close(parts["scan"], F.cross_entropy(output.scan_logits, episode["class_ids"]))
    torch.testing.assert_close(loss, parts["ce"] + 0.1 * parts["aux"] + 0.5 * parts["scan"])
    (grad,) = torch.autograd.grad(parts["scan"], clips)
    unselected = [1, 3, 4]  # the sampler hands the recogniser frames 0, 2 and 5 only
    assert grad[:, unselected].abs().sum() > 0
    model.eval()
    assert run(model, episode).scan_logits is None


def test_scan_classifier_needs_a_sampler_that_scans() -> None:
    with pytest.raises(ConfigError, match="scan_aux_weight"):
        make_recognizer(feature_dim=0, concat=False, scan_aux_weight=1.0)


def test_split_rows_keeps_batch_order() -> None:
    support_rows, query_rows = split_rows(torch.tensor([False, True, True, False, True, False]), 3)
    assert support_rows.tolist() == [1, 2, 4] and query_rows.tolist() == [0, 3, 5]
