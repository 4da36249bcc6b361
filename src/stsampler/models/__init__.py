"""Backbones, few-shot heads and the recogniser that puts a sampler in front of them."""
from stsampler.models.backbones import BACKBONES, build_backbone
from stsampler.models.heads import HEADS, build_head
from stsampler.models.recognizer import FewShotRecognizer, RecognizerOutput

__all__ = ["BACKBONES", "HEADS", "build_backbone", "build_head", "FewShotRecognizer", "RecognizerOutput"]
