"""Kubernetes API access for Archon: a client from a kubeconfig, and one follower that turns
changing status into progress lines (deploy now; ArgoCD and Tekton followers reuse it)."""

from archon.kube.client import api_client, wait_for_api
from archon.kube.follow import FollowResult, Snapshot, follow

__all__ = ["FollowResult", "Snapshot", "api_client", "follow", "wait_for_api"]
