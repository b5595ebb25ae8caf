"""Security scanners (kube-score, checkov) on rendered manifests, and what the defaults expose."""
