"""Few-shot classification heads: ProtoNet, OTAM and TRX behind one interface.

Every head maps per-frame embeddings of the support set ``[S, T, D]`` with episode labels
``[S]`` (0..way-1) and of the queries ``[Q, T, D]`` to logits ``[Q, way]``. A query's logits depend on
that query and the support set only. Build heads with :func:`build_head`.
"""
from __future__ import annotations

import inspect
import math
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import nn

from stsampler.errors import ConfigError
from stsampler.ops.encoding import sinusoidal_encoding


class FewShotHead(nn.Module):
    """Interface of a few-shot head.

    Attributes:
        dim: size D of a frame embedding.
        num_frames: number T of frames per video.
    """

    def __init__(self, dim: int, num_frames: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_frames = num_frames

    def forward(
        self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, way: int
    ) -> torch.Tensor:
        """Classify queries.

        Args:
            support: support frame embeddings ``[S, T, D]``.
            support_labels: int64 ``[S]`` in 0..way-1.
            query: query frame embeddings ``[Q, T, D]``.
            way: number of classes N.

        Returns:
            logits ``[Q, way]``.
        """
        raise NotImplementedError


def class_average(values: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Average the columns of ``values [..., S]`` per class -> ``[..., way]`` (a one-hot matmul).

    Classes without any support video get 0.
    """
    one_hot = F.one_hot(labels, way).to(values.dtype)  # [S, way]
    return values @ (one_hot / one_hot.sum(0).clamp_min(1.0))


def group_by_class(support: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Arrange a balanced support set ``[S, ...]`` as ``[way, K, ...]``, class c in row c.

    Within a class the videos keep their order. Raises ValueError unless every class 0..way-1 has
    exactly K = S / way videos (this check costs one host-device synchronisation).
    """
    num_support = support.shape[0]
    shots = num_support // way
    counts = torch.bincount(labels, minlength=way)
    if shots * way != num_support or counts.numel() != way or bool((counts != shots).any()):
        raise ValueError(f"the support set must hold the same number of videos for each of the {way} classes")
    order = torch.argsort(labels, stable=True)
    return support[order].reshape(way, shots, *support.shape[1:])


class ProtoNetHead(FewShotHead):
    """Prototypical networks on video embeddings (Snell et al. 2017).

    Video embedding = mean over the T frame embeddings; prototype = mean of a class's support
    embeddings. Metric ``"cosine"``: logits = scale * cos(query, prototype), where scale starts at
    ``scale`` and is learned (as a log-scale parameter) when ``learn_scale`` is True, else fixed.
    Metric ``"euclidean"``: logits = -||query - prototype||^2 (no scale).
    """

    def __init__(
        self,
        dim: int,
        num_frames: int,
        metric: str = "cosine",
        scale: float = 10.0,
        learn_scale: bool = True,
    ) -> None:
        super().__init__(dim, num_frames)
        if metric not in ("cosine", "euclidean"):
            raise ConfigError(f"unknown ProtoNet metric {metric!r}; known metrics: cosine, euclidean")
        if scale <= 0:
            raise ConfigError(f"ProtoNet scale must be positive, got {scale}")
        self.metric = metric
        log_scale = torch.tensor(math.log(scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(
        self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, way: int
    ) -> torch.Tensor:
        """Logits ``[Q, way]`` from support ``[S, T, D]``, labels ``[S]``, query ``[Q, T, D]``."""
        prototypes = class_average(support.mean(1).T, support_labels, way).T  # [way, D]
        queries = query.mean(1)  # [Q, D]
        if self.metric == "euclidean":
            return -(queries.unsqueeze(1) - prototypes.unsqueeze(0)).pow(2).sum(-1)
        cosine = F.normalize(queries, dim=-1) @ F.normalize(prototypes, dim=-1).T
        return self.log_scale.exp() * cosine


def soft_dtw_otam(dist: torch.Tensor, smoothing: float) -> torch.Tensor:
    """OTAM alignment cost of a batch of distance matrices ``[P, A, B]`` -> ``[P]``.

    The columns (sequence B) get one zero-cost padding column at each end; a path runs from the
    top-left to the bottom-right cell of the ``A x (B + 2)`` grid with right and diagonal-down steps,
    plus down steps inside the two padding columns, so it may start and end anywhere in the
    sequence. Minima over predecessors are soft: ``-smoothing * logsumexp(-x / smoothing)``.
    The dynamic programme runs over anti-diagonals, vectorised over pairs and cells.
    """
    num_pairs, rows, cols = dist.shape
    dist = F.pad(dist.float(), (1, 1))  # [P, A, W]
    width = cols + 2
    num_diagonals = rows + width - 1
    row = torch.arange(rows, device=dist.device).unsqueeze(1)  # [A, 1]
    col = torch.arange(num_diagonals, device=dist.device).unsqueeze(0) - row  # [A, K]: column of cell (row, k)
    inside = (col >= 0) & (col < width)
    padding_column = (col == 0) | (col == width - 1)
    cost = dist.gather(2, col.clamp(0, width - 1).expand(num_pairs, rows, num_diagonals))  # [P, A, K]
    # A large finite value (not inf) marks cells outside the grid, keeping gradients finite; it is
    # negligible in the soft minimum as long as smoothing stays far below 1e4.
    outside = torch.tensor(1e6, dtype=dist.dtype, device=dist.device)
    blocked = outside.expand(num_pairs, 1)

    def shift_down(diagonal: torch.Tensor) -> torch.Tensor:
        """Cell (i, .) receives the value of row i - 1; row 0 gets the outside value."""
        return torch.cat([blocked, diagonal[:, :-1]], dim=1)

    one_back = torch.where(row.squeeze(1) == 0, cost[:, :, 0], outside)  # diagonal 0: the start cell
    two_back = blocked.expand_as(one_back)
    for k in range(1, num_diagonals):
        candidates = torch.stack(
            [
                one_back,  # from (i, j - 1)
                torch.where(padding_column[:, k], shift_down(one_back), outside),  # from (i - 1, j)
                shift_down(two_back),  # from (i - 1, j - 1)
            ]
        )
        soft_min = -smoothing * torch.logsumexp(candidates / -smoothing, dim=0)
        two_back, one_back = one_back, torch.where(inside[:, k], cost[:, :, k] + soft_min, outside)
    return one_back[:, -1]


class OTAMHead(FewShotHead):
    """Ordered temporal alignment (Cao et al., CVPR 2020).

    Frame distance = 1 - cosine similarity, ``[Q, S, T, T]``; the soft OTAM alignment cost
    (:func:`soft_dtw_otam`, smoothing lambda) is computed query->support and support->query and
    the two are added, as in the public OTAM code, so the logits have its scale; a class's logit is
    minus the mean cost over its support videos. Departures from that code (``docs/method.md``
    section 7): exact cosine (``F.normalize``) rather than a +0.01 denominator, and down steps only
    inside the padding columns.
    """

    def __init__(self, dim: int, num_frames: int, smoothing: float = 0.1) -> None:
        super().__init__(dim, num_frames)
        if smoothing <= 0:
            raise ConfigError(f"OTAM smoothing must be positive, got {smoothing}")
        self.smoothing = smoothing

    def forward(
        self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, way: int
    ) -> torch.Tensor:
        """Logits ``[Q, way]`` from support ``[S, T, D]``, labels ``[S]``, query ``[Q, T, D]``."""
        num_query, num_support = query.shape[0], support.shape[0]
        similarity = torch.einsum("qid,sjd->qsij", F.normalize(query, dim=-1), F.normalize(support, dim=-1))
        dist = (1.0 - similarity).flatten(0, 1)  # [Q*S, T, T]
        both_directions = torch.cat([dist, dist.transpose(1, 2)])  # [2*Q*S, T, T]
        cost = soft_dtw_otam(both_directions, self.smoothing).view(2, num_query, num_support).sum(0)
        return -class_average(cost, support_labels, way).to(query.dtype)


def project_tuples(linear: nn.Linear, frames: torch.Tensor, tuples: torch.Tensor) -> torch.Tensor:
    """Apply ``linear`` to every concatenated frame tuple: ``[..., T, D]`` -> ``[..., P, E]``.

    ``tuples`` (int64 ``[P, c]``) lists the frame indices of each tuple; ``linear`` maps ``c * D`` to E.
    A linear map of a concatenation is the sum of per-slot maps of its parts, so every frame is
    projected once per slot (T * c products of size D x E instead of P * c).
    """
    cardinality = tuples.shape[1]
    weight = linear.weight.view(linear.out_features * cardinality, -1)  # [E*c, D]: row e*c + slot
    per_slot = F.linear(frames, weight).unflatten(-1, (-1, cardinality)).transpose(-1, -2)  # [..., T, c, E]
    slots = torch.arange(cardinality, device=frames.device)
    return per_slot[..., tuples, slots, :].sum(-2) + linear.bias


class _TupleCrossAttention(nn.Module):
    """TRX's temporal cross-transformer for one tuple cardinality.

    Ordered frame tuples (all index combinations i < j < ...) are concatenated to
    ``cardinality * dim`` features. Keys and queries share one map (linear + LayerNorm), values another
    (linear), as in the public TRX code. For each query tuple, attention over all tuples of all K
    support videos of a class (one softmax) builds a class prototype of every query tuple.
    """

    def __init__(self, dim: int, num_frames: int, cardinality: int, proj_dim: int) -> None:
        super().__init__()
        tuples = torch.tensor(list(combinations(range(num_frames), cardinality)), dtype=torch.long)
        self.register_buffer("tuples", tuples, persistent=False)  # [P, cardinality]
        self.key = nn.Linear(cardinality * dim, proj_dim)
        self.key_norm = nn.LayerNorm(proj_dim)
        self.value = nn.Linear(cardinality * dim, proj_dim)

    def forward(self, grouped_support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Mean squared distance ``[Q, way]`` from support ``[way, K, T, D]`` and query ``[Q, T, D]``."""
        support_keys = self.key_norm(project_tuples(self.key, grouped_support, self.tuples)).flatten(1, 2)
        support_values = project_tuples(self.value, grouped_support, self.tuples).flatten(1, 2)  # [way, K*P, E]
        query_keys = self.key_norm(project_tuples(self.key, query, self.tuples))  # [Q, P, E]
        query_values = project_tuples(self.value, query, self.tuples)
        scores = torch.einsum("qpe,nre->qnpr", query_keys, support_keys) / math.sqrt(query_keys.shape[-1])
        prototypes = torch.einsum("qnpr,nre->qnpe", scores.softmax(-1), support_values)  # [Q, way, P, E]
        return (query_values.unsqueeze(1) - prototypes).pow(2).sum(-1).mean(-1)


class TRXHead(FewShotHead):
    """Temporal-relational cross-transformers (Perrett et al., CVPR 2021).

    Frame embeddings get a sinusoidal position encoding (times ``pe_scale``, then dropout), then one
    :class:`_TupleCrossAttention` per cardinality (default pairs and triples) gives a distance per
    class; logits = minus the mean of the distances over cardinalities, the public TRX code's scale
    (``docs/method.md`` section 7). Needs a balanced support set (the same K for every class),
    which episodes always are.
    """

    def __init__(
        self,
        dim: int,
        num_frames: int,
        cardinalities: tuple[int, ...] | list[int] = (2, 3),
        proj_dim: int = 1152,
        dropout: float = 0.1,
        pe_scale: float = 0.1,
    ) -> None:
        super().__init__(dim, num_frames)
        if not cardinalities or any(not 1 <= c <= num_frames for c in cardinalities):
            raise ConfigError(f"TRX cardinalities must lie in 1..{num_frames}, got {list(cardinalities)}")
        self.register_buffer("position", pe_scale * sinusoidal_encoding(num_frames, dim), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.attentions = nn.ModuleList(
            _TupleCrossAttention(dim, num_frames, cardinality, proj_dim) for cardinality in cardinalities
        )

    def forward(
        self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, way: int
    ) -> torch.Tensor:
        """Logits ``[Q, way]`` from support ``[S, T, D]``, labels ``[S]`` (balanced), query ``[Q, T, D]``."""
        grouped = self.dropout(group_by_class(support, support_labels, way) + self.position)
        query = self.dropout(query + self.position)
        return -torch.stack([attention(grouped, query) for attention in self.attentions]).mean(0)


HEADS: dict[str, type[FewShotHead]] = {"protonet": ProtoNetHead, "otam": OTAMHead, "trx": TRXHead}
"""Head name -> class; every class takes ``(dim, num_frames, **options)``."""


def build_head(name: str, dim: int, num_frames: int, **kwargs: object) -> FewShotHead:
    """Build a head by name for frame embeddings of size ``dim`` and ``num_frames`` frames per video.

    Raises:
        ConfigError: unknown name or an option the head does not take.
    """
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; known heads: {', '.join(sorted(HEADS))}")
    head_class = HEADS[name]
    options = [p for p in inspect.signature(head_class.__init__).parameters if p not in ("self", "dim", "num_frames")]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ConfigError(f"head {name!r} has no option(s) {', '.join(unknown)}; its options: {', '.join(options)}")
    return head_class(dim, num_frames, **kwargs)
