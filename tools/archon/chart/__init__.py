"""Tooling for the Helm chart in charts/archon: its values documentation and schema checks."""
