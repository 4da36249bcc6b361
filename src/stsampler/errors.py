"""Exceptions with messages meant for people: each names the file or key at fault and what to do.

The command-line interface prints these without a traceback; anything else is a bug.
"""
from __future__ import annotations


class StsamplerError(Exception):
    """Base class of every error the library raises on bad input."""


class VideoReadError(StsamplerError):
    """A video file or frame folder is missing, empty, truncated or undecodable."""


class DatasetError(StsamplerError):
    """A split list, data root or dataset cannot serve what was asked (too few classes, videos...)."""


class ConfigError(StsamplerError):
    """A configuration key is unknown or a value has the wrong type."""


class CheckpointError(StsamplerError):
    """A checkpoint is missing, corrupt or belongs to another architecture."""


class OutputError(StsamplerError, OSError):
    """An output file or folder cannot be written (an OSError, so callers that tolerate failed writes still may)."""


class DeviceError(StsamplerError):
    """The requested device (``train.device``, ``--device``) does not exist on this machine."""
