"""Training, evaluation, distributed helpers, checkpoints, comparison runs and inference.

Import the submodules (``stsampler.engine.train``, ``.evaluate``, ``.predict`` ...) directly.
"""
