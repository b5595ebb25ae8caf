"""Deploy, inspect and remove the Archon release on a cluster (helm through pyhelm3, exec only)."""
