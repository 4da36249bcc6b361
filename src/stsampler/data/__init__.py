"""Videos in, few-shot episodes out: decoding, frame indices, transforms, splits, episodes, synthetic actions."""
from stsampler.data.dataset import VideoDataset
from stsampler.data.episodes import (
    Episode,
    EpisodeSampler,
    FixedEpisodeSampler,
    collate_episode,
    load_episodes,
    save_episodes,
)
from stsampler.data.indices import segment_indices
from stsampler.data.splits import BENCHMARKS, VideoItem, load_benchmark_split, load_split
from stsampler.data.synthetic import SynthConfig, generate_dataset, load_metadata
from stsampler.data.transforms import ClipTransform, denormalize, normalize
from stsampler.data.video import VideoInfo, probe_video, read_frames

__all__ = [
    "VideoDataset", "Episode", "EpisodeSampler", "FixedEpisodeSampler", "collate_episode", "load_episodes",
    "save_episodes", "segment_indices", "BENCHMARKS", "VideoItem", "load_benchmark_split", "load_split",
    "SynthConfig", "generate_dataset", "load_metadata", "ClipTransform", "denormalize", "normalize", "VideoInfo",
    "probe_video", "read_frames",
]
