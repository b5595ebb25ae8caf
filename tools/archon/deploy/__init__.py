"""Deploy, inspect and remove the Archon release on a cluster (through archon.helm)."""
