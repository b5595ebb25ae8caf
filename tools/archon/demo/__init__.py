"""`archon demo`, the main job: bootstrap, check every shipped profile, render and validate,
then (unless told not to) the local cluster: deploy, status, smoke requests; one summary."""

from archon.demo.checks import run_demo
from archon.demo.cluster import run_cluster_demo

__all__ = ["run_cluster_demo", "run_demo"]
