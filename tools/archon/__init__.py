"""Archon: put vLLM on one consumer GPU in Kubernetes, and prove first that it will start."""

__version__ = "0.1.0"
