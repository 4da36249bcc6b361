"""stsampler: a task-adaptive spatial-temporal video sampler for few-shot action recognition."""
__version__ = "0.1.0"
