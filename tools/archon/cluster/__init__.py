"""Archon's local cluster: a real kube-apiserver, controller-manager and scheduler on etcd, with
kwok playing the kubelets of fake GPU nodes. Started by kwokctl's binary runtime from binaries
built by the toolchain; loopback only; its kubeconfig lives in the Archon cache."""

from archon.cluster.lifecycle import ClusterInfo, cluster_status, down, kubeconfig_path, up

__all__ = ["ClusterInfo", "cluster_status", "down", "kubeconfig_path", "up"]
