"""GitOps around the chart: the upstream ArgoCD and Tekton CRDs, and the manifests that use them."""
