"""The few-shot recogniser: frame sampler -> frame backbone -> few-shot head (+ auxiliary classifier)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stsampler.errors import ConfigError
from stsampler.models.backbones import Backbone
from stsampler.models.heads import FewShotHead
from stsampler.ops.resize import resize_square
from stsampler.samplers.base import FrameSampler, SamplerOutput


@dataclass
class RecognizerOutput:
    """What one forward pass over an episode returns.

    Attributes:
        logits: query logits ``[Q, way]``, queries in batch order.
        embeddings: per-frame video embeddings ``[B, T, D']`` of every video of the batch.
        sampler_output: what the sampler selected (frames, indices, scores...).
        aux_logits: auxiliary logits over all training classes ``[B, num_train_classes]`` (training
            mode only), else None.
        scan_logits: the scan classifier's logits over all training classes ``[B, num_train_classes]``
            (training mode, with a scan classifier), else None.
    """

    logits: torch.Tensor
    embeddings: torch.Tensor
    sampler_output: SamplerOutput
    aux_logits: torch.Tensor | None
    scan_logits: torch.Tensor | None = None


def split_rows(is_support: torch.Tensor, num_support: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices of the support ``[num_support]`` and query ``[B - num_support]`` videos, each in batch order.

    A stable sort instead of boolean indexing: no host-device synchronisation.
    """
    order = torch.argsort((~is_support).to(torch.uint8), stable=True)
    return order[:num_support], order[num_support:]


class FewShotRecognizer(nn.Module):
    """Sampler + backbone + few-shot head, trained with query cross-entropy and an auxiliary loss.

    Each video's T selected frames are embedded by the backbone (one batch of ``B*T`` frames). With
    ``concat_scan_feature`` and a sampler that produces a scan feature g_X ``[B, Dg]``, g_X is appended
    to every frame embedding, so a ProtoNet head's mean over frames is cat(mean_t, g_X). The auxiliary
    classifier is a linear layer over all training classes on the mean-over-frames video embedding;
    it runs in training mode only. With ``scan_aux_weight`` above 0 a second linear classifier reads
    the sampler's scan features of all M frames, max-pooled over time (``[B, M, Dg]`` -> ``[B, Dg]``),
    so the scanner learns each training class's event however few of its frames are selected; it too
    runs in training mode only. ``input_size`` (``model.input_size``) is the side the backbone
    embeds frames at: frames of another size are resized to it first (None: as they come).

    Attributes:
        embed_dim: size D' of a frame embedding given to the head (backbone D, plus Dg when concatenated).
    """

    def __init__(
        self,
        sampler: FrameSampler,
        backbone: Backbone,
        head: FewShotHead,
        num_train_classes: int,
        aux_weight: float = 0.1,
        concat_scan_feature: bool = True,
        input_size: int | None = None,
        scan_aux_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.sampler = sampler
        self.backbone = backbone
        self.head = head
        self.aux_weight = aux_weight
        self.concat_scan_feature = concat_scan_feature and sampler.feature_dim > 0
        self.embed_dim = backbone.out_dim + (sampler.feature_dim if self.concat_scan_feature else 0)
        if head.dim != self.embed_dim or head.num_frames != sampler.num_frames:
            raise ConfigError(
                f"the head expects {head.num_frames} frames of dimension {head.dim}, but the sampler gives "
                f"{sampler.num_frames} frames and the embeddings have dimension {self.embed_dim}"
            )
        self.aux_classifier = nn.Linear(self.embed_dim, num_train_classes)
        if scan_aux_weight > 0 and sampler.feature_dim == 0:
            raise ConfigError("sampler.scan_aux_weight needs a sampler that scans every frame (sampler.kind: learned)")
        self.scan_aux_weight = scan_aux_weight
        self.scan_classifier = nn.Linear(sampler.feature_dim, num_train_classes) if scan_aux_weight > 0 else None

    def resize(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[N, 3, H, W]`` at the backbone's ``input_size`` ``[N, 3, S, S]``
        (:func:`~stsampler.ops.resize.resize_square`); unchanged when ``input_size`` is None."""
        return frames if self.input_size is None else resize_square(frames, self.input_size)

    def embed_frames(self, frames: torch.Tensor, video_feature: torch.Tensor | None) -> torch.Tensor:
        """Per-frame embeddings ``[B, T, D']`` of selected frames ``[B, T, 3, H, W]``.

        The backbone embeds all ``B*T`` frames in one batch; with ``concat_scan_feature`` the scan
        feature g_X ``video_feature`` ``[B, Dg]`` is appended to every frame embedding (it is ignored,
        and may be None, otherwise). Also the entry point for frames sampled outside the recogniser
        (e.g. decoded after ``STSampler.plan``).
        """
        num_videos, num_frames = frames.shape[:2]
        embeddings = self.backbone(self.resize(frames.flatten(0, 1))).view(num_videos, num_frames, -1)
        if not self.concat_scan_feature:
            return embeddings
        if video_feature is None:
            raise ValueError("the sampler declares a scan feature but returned video_feature=None")
        scan = video_feature.to(embeddings.dtype).unsqueeze(1).expand(-1, num_frames, -1)
        return torch.cat([embeddings, scan], dim=-1)

    def _embed(self, clips: torch.Tensor, is_support: torch.Tensor) -> tuple[torch.Tensor, SamplerOutput]:
        """Sample and embed: clips ``[B, M, 3, H, W]`` -> (embeddings ``[B, T, D']``, sampler output)."""
        sampled = self.sampler(clips, is_support)
        return self.embed_frames(sampled.frames, sampled.video_feature), sampled

    def embed(self, clips: torch.Tensor, is_support: torch.Tensor) -> torch.Tensor:
        """Per-frame video embeddings ``[B, T, D']`` of normalised clips ``[B, M, 3, H, W]``.

        ``is_support`` (bool ``[B]``) tells a task-adaptive sampler which rows form the support set.
        Cache support embeddings with this and classify with :meth:`classify`.
        """
        return self._embed(clips, is_support)[0]

    def classify(
        self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, way: int
    ) -> torch.Tensor:
        """Head logits ``[Q, way]`` from embeddings support ``[S, T, D']``, labels ``[S]``, query ``[Q, T, D']``."""
        return self.head(support, support_labels, query, way)

    def forward(
        self, clips: torch.Tensor, is_support: torch.Tensor, support_labels: torch.Tensor, way: int
    ) -> RecognizerOutput:
        """Classify the queries of one episode.

        Args:
            clips: normalised dense clips, float ``[B, M, 3, H, W]``, support and query rows in any order.
            is_support: bool ``[B]``.
            support_labels: int64 ``[S]`` (0..way-1) of the support rows, in batch order.
            way: number of classes N.
        """
        embeddings, sampled = self._embed(clips, is_support)
        support_rows, query_rows = split_rows(is_support, support_labels.shape[0])
        logits = self.classify(embeddings[support_rows], support_labels, embeddings[query_rows], way)
        aux_logits = scan_logits = None
        if self.training:
            aux_logits = self.aux_classifier(embeddings.mean(1))
            if self.scan_classifier is not None:
                scan_logits = self.scan_classifier(sampled.frame_features.amax(dim=1))
        return RecognizerOutput(
            logits=logits, embeddings=embeddings, sampler_output=sampled, aux_logits=aux_logits, scan_logits=scan_logits
        )

    def loss(
        self, output: RecognizerOutput, query_labels: torch.Tensor, class_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Query cross-entropy plus ``aux_weight`` times the auxiliary cross-entropy over all B videos
        (plus ``scan_aux_weight`` times the scan classifier's, when it has one).

        Args:
            output: a forward pass's output.
            query_labels: int64 ``[Q]`` episode labels of the queries, in batch order.
            class_ids: int64 ``[B]`` training-class indices of all videos, or None (no auxiliary loss).

        Returns:
            (total loss, {"ce": query loss, "aux": auxiliary loss, "scan": scan classifier loss}), all
            tensors; the auxiliary losses are 0 without class_ids, the scan loss also without a scan classifier.
        """
        ce = F.cross_entropy(output.logits, query_labels)
        aux = scan = ce.new_zeros(())
        if class_ids is not None:
            if output.aux_logits is None:
                raise ValueError("class_ids were given but the output has no aux_logits (the model was in eval mode)")
            aux = F.cross_entropy(output.aux_logits, class_ids)
            if output.scan_logits is not None:
                scan = F.cross_entropy(output.scan_logits, class_ids)
        return ce + self.aux_weight * aux + self.scan_aux_weight * scan, {"ce": ce, "aux": aux, "scan": scan}
