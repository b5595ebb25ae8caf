"""`archon preflight`: prove before deploying that vLLM will start on the GPU.

Public API (stable; `archon lint` and the benchmark rely on it):

- check_values(values, *, gpu=None, source="") -> PreflightReport
- PreflightReport: .verdict ("PASS" | "WARN" | "FAIL"), .problems (list[Problem]), .as_dict()
- memory.Engine / memory.GpuBudget / memory.estimate / memory.estimate_gpu: the memory model,
  one engine or several sharing a GPU
"""

from archon.preflight.report import PreflightReport, check_values

__all__ = ["PreflightReport", "check_values"]
