"""Few-shot heads: shapes, gradients, hand-computed values and symmetries."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stsampler.errors import ConfigError
from stsampler.models.heads import (
    HEADS,
    OTAMHead,
    ProtoNetHead,
    build_head,
    group_by_class,
    project_tuples,
    soft_dtw_otam,
)

WAY, FRAMES, DIM = 5, 4, 8
HEAD_OPTIONS = {"protonet": {}, "otam": {}, "trx": {"proj_dim": 6}}


def make_head(name: str, frames: int = FRAMES, dim: int = DIM):
    torch.manual_seed(0)
    return build_head(name, dim, frames, **HEAD_OPTIONS[name]).eval()


def make_episode(shots: int, queries_per_class: int = 2, frames: int = FRAMES, dim: int = DIM):
    generator = torch.Generator().manual_seed(shots)
    support = torch.randn(WAY * shots, frames, dim, generator=generator)
    labels = torch.arange(WAY).repeat(shots)
    query = torch.randn(WAY * queries_per_class, frames, dim, generator=generator)
    return support, labels, query


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("shots", [1, 3])
def test_logits_shape_and_gradients(name: str, shots: int) -> None:
    head = make_head(name).train()
    support, labels, query = make_episode(shots)
    support.requires_grad_(True)
    query.requires_grad_(True)
    logits = head(support, labels, query, WAY)
    assert logits.shape == (query.shape[0], WAY)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.arange(WAY).repeat(2)).backward()
    assert support.grad.abs().sum() > 0 and query.grad.abs().sum() > 0
    for parameter_name, parameter in head.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize("name", sorted(HEADS))
def test_class_relabelling_permutes_logits(name: str) -> None:
    head = make_head(name)
    support, labels, query = make_episode(shots=2)
    permutation = torch.tensor([3, 0, 4, 1, 2])  # class c becomes class permutation[c]
    logits = head(support, labels, query, WAY)
    relabelled = head(support, permutation[labels], query, WAY)
    torch.testing.assert_close(relabelled[:, permutation], logits)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_support_order_does_not_matter(name: str) -> None:
    head = make_head(name)
    support, labels, query = make_episode(shots=3)
    order = torch.randperm(support.shape[0], generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(head(support[order], labels[order], query, WAY), head(support, labels, query, WAY))


@pytest.mark.parametrize("name", sorted(HEADS))
def test_query_logits_do_not_depend_on_other_queries(name: str) -> None:
    head = make_head(name)
    support, labels, query = make_episode(shots=2)
    logits = head(support, labels, query, WAY)
    torch.testing.assert_close(head(support, labels, query[3:4], WAY), logits[3:4])


def test_protonet_euclidean_matches_hand_computation() -> None:
    support = torch.tensor([[[1.0, 0.0], [3.0, 0.0]], [[0.0, 2.0], [0.0, 4.0]], [[0.0, 0.0], [2.0, 2.0]]])
    labels = torch.tensor([0, 1, 0])
    query = torch.tensor([[[1.0, 1.0], [1.0, 3.0]]])
    # video means: [2, 0], [0, 3], [1, 1]; prototypes: [1.5, 0.5] and [0, 3]; query mean: [1, 2]
    logits = ProtoNetHead(2, 2, metric="euclidean")(support, labels, query, 2)
    torch.testing.assert_close(logits, torch.tensor([[-2.5, -2.0]]))


def test_protonet_cosine_matches_hand_computation_and_fixed_scale() -> None:
    support = torch.tensor([[[1.5, 0.5]], [[0.0, 3.0]]])
    query = torch.tensor([[[1.0, 2.0]]])
    head = ProtoNetHead(2, 1, metric="cosine", scale=2.0, learn_scale=False)
    expected = 2.0 * torch.tensor([[2.5 / (5**0.5 * 2.5**0.5), 6.0 / (5**0.5 * 3.0)]])
    torch.testing.assert_close(head(support, torch.tensor([0, 1]), query, 2), expected)
    assert list(head.parameters()) == []


def reference_otam(dist: torch.Tensor, smoothing: float) -> torch.Tensor:
    """The OTAM recurrence cell by cell on one ``[A, B]`` matrix (zero padding columns at both ends)."""
    dist = F.pad(dist, (1, 1))
    rows, width = dist.shape
    cum: dict[tuple[int, int], torch.Tensor] = {}
    for i in range(rows):
        for j in range(width):
            previous = []
            if j > 0:
                previous.append(cum[i, j - 1])
            if i > 0 and j > 0:
                previous.append(cum[i - 1, j - 1])
            if i > 0 and j in (0, width - 1):
                previous.append(cum[i - 1, j])
            if previous:
                soft_min = -smoothing * torch.logsumexp(-torch.stack(previous) / smoothing, 0)
                cum[i, j] = dist[i, j] + soft_min
            else:
                cum[i, j] = dist[i, j]
    return cum[rows - 1, width - 1]


@pytest.mark.parametrize("shape", [(3, 3), (4, 6), (5, 2)])
@pytest.mark.parametrize("smoothing", [0.1, 1.0])
def test_soft_dtw_matches_cell_by_cell_reference(shape: tuple[int, int], smoothing: float) -> None:
    dist = torch.rand(3, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.stack([reference_otam(d, smoothing) for d in dist]).float()
    torch.testing.assert_close(soft_dtw_otam(dist, smoothing), expected)


def test_soft_dtw_skips_unmatched_ends() -> None:
    # Rows 0 and 3 are far from everything; the padding lets the path skip them at no cost.
    dist = torch.full((1, 4, 2), 2.0)
    dist[0, 1, 0] = dist[0, 2, 1] = 0.0
    assert soft_dtw_otam(dist, smoothing=0.01).item() == pytest.approx(0.0, abs=0.05)


def test_otam_prefers_the_identically_ordered_support() -> None:
    frames = 6
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(1, frames, DIM, generator=generator)
    orders = [torch.arange(frames), torch.arange(frames).flip(0), torch.arange(frames).roll(2)]
    orders += [torch.randperm(frames, generator=generator) for _ in range(2)]
    assert all(not torch.equal(order, orders[0]) for order in orders[1:])
    support = torch.cat([query[:, order] for order in orders])
    logits = OTAMHead(DIM, frames)(support, torch.arange(len(orders)), query, len(orders))
    assert logits.argmax().item() == 0
    assert (logits[0, 0] > logits[0, 1:]).all()


def test_project_tuples_equals_the_linear_map_of_concatenated_frames() -> None:
    torch.manual_seed(0)
    frames = torch.randn(2, 3, 5, 4)  # [.., T=5, D=4]
    tuples = torch.tensor([[0, 1, 4], [1, 2, 3], [0, 3, 4]])
    linear = torch.nn.Linear(3 * 4, 6)
    concatenated = torch.stack([frames[..., list(t), :].flatten(-2) for t in tuples.tolist()], dim=-2)
    torch.testing.assert_close(project_tuples(linear, frames, tuples), linear(concatenated))


def test_group_by_class_requires_a_balanced_support_set() -> None:
    support = torch.arange(6.0).view(6, 1)
    grouped = group_by_class(support, torch.tensor([1, 0, 1, 0, 2, 2]), 3)
    torch.testing.assert_close(grouped.squeeze(-1), torch.tensor([[1.0, 3.0], [0.0, 2.0], [4.0, 5.0]]))
    with pytest.raises(ValueError, match="same number"):
        group_by_class(support, torch.tensor([0, 0, 0, 1, 1, 2]), 3)


def test_build_head_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ConfigError, match="otam, protonet, trx"):
        build_head("ta2n", DIM, FRAMES)
    with pytest.raises(ConfigError, match="lambda"):
        build_head("otam", DIM, FRAMES, **{"lambda": 0.1})
    with pytest.raises(ConfigError, match="metric"):
        build_head("protonet", DIM, FRAMES, metric="manhattan")
    head = build_head("trx", DIM, FRAMES, cardinalities=[2], proj_dim=4)
    assert len(head.attentions) == 1 and (head.dim, head.num_frames) == (DIM, FRAMES)


# The reference form of each head, written loop by loop from the published method and its public
# code's logit scale (docs/method.md section 7), on tiny features.


def test_protonet_matches_plain_prototypes() -> None:
    support, labels, query = make_episode(shots=2, queries_per_class=1, frames=3, dim=4)
    head = ProtoNetHead(4, 3, scale=5.0, learn_scale=False)
    expected = torch.zeros(WAY, WAY)
    for q in range(WAY):
        for c in range(WAY):
            prototype = torch.stack([support[s].mean(0) for s in range(len(labels)) if labels[s] == c]).mean(0)
            expected[q, c] = 5.0 * F.cosine_similarity(query[q].mean(0), prototype, dim=0)
    torch.testing.assert_close(head(support, labels, query, WAY), expected)


def test_otam_adds_both_directions_single_frame_by_hand() -> None:
    # One frame per video: each direction's alignment cost is the frame distance 1 - cos itself,
    # and the reference adds the two directions: logit = -2 (1 - cos).
    support = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    query = torch.tensor([[[3.0, 4.0]]])
    logits = OTAMHead(2, 1)(support, torch.tensor([0, 1]), query, 2)
    torch.testing.assert_close(logits, torch.tensor([[-2 * (1 - 0.6), -2 * (1 - 0.8)]]))


def test_otam_matches_the_reference_form() -> None:
    support, labels, query = make_episode(shots=2, queries_per_class=1, frames=3, dim=4)
    head = OTAMHead(4, 3, smoothing=0.1)
    expected = torch.zeros(WAY, WAY)
    for q in range(WAY):
        costs = []
        for s in range(len(labels)):
            dist = 1 - F.cosine_similarity(query[q][:, None, :], support[s][None, :, :], dim=-1)  # [T, T]
            costs.append(reference_otam(dist, 0.1) + reference_otam(dist.T, 0.1))
        for c in range(WAY):
            expected[q, c] = -torch.stack([costs[s] for s in range(len(labels)) if labels[s] == c]).mean()
    torch.testing.assert_close(head(support, labels, query, WAY), expected, atol=1e-5, rtol=1e-5)


def test_trx_matches_the_reference_form() -> None:
    frames, dim, shots = 3, 4, 2
    support, labels, query = make_episode(shots=shots, queries_per_class=1, frames=frames, dim=dim)
    torch.manual_seed(0)
    head = build_head("trx", dim, frames, cardinalities=[1, 2], proj_dim=5).eval()

    def keys_values(attention, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.stack([(video + head.position)[t].flatten() for t in attention.tuples.tolist()])  # [P, c*D]
        return attention.key_norm(attention.key(rows)), attention.value(rows)

    distances = []
    for attention in head.attentions:
        num_tuples = attention.tuples.shape[0]
        distance = torch.zeros(WAY, WAY)
        for q in range(WAY):
            query_keys, query_values = keys_values(attention, query[q])
            for c in range(WAY):
                class_kv = [keys_values(attention, support[s]) for s in range(len(labels)) if labels[s] == c]
                keys = torch.cat([k for k, _ in class_kv])  # [K*P, E]
                values = torch.cat([v for _, v in class_kv])
                weights = (query_keys @ keys.T / 5**0.5).softmax(-1)  # one softmax over the class's tuples
                prototypes = weights @ values  # [P, E]
                distance[q, c] = (query_values - prototypes).square().sum() / num_tuples
        distances.append(distance)
    expected = -(distances[0] + distances[1]) / 2  # the mean over cardinalities
    torch.testing.assert_close(head(support, labels, query, WAY), expected, atol=1e-5, rtol=1e-5)
