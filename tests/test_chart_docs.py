"""The chart's values table and schema stay current, and the checker notices when they are not."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from archon.chart import docs
from archon.cli.main import main
from archon.errors import UsageError

CHART = Path(__file__).resolve().parent.parent / "charts" / "archon"


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    """A private copy of the real chart to break."""
    copy = tmp_path / "archon"
    shutil.copytree(CHART, copy)
    return copy


def _edit_values(chart: Path, old: str, new: str) -> None:
    file = chart / docs.VALUES
    text = file.read_text(encoding="utf-8")
    assert old in text, old
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def _edit_schema(chart: Path, path: list[str], schema: object) -> None:
    file = chart / docs.SCHEMA
    data = json.loads(file.read_text(encoding="utf-8"))
    node = data
    for part in path[:-1]:
        node = node["properties"][part]
    if schema is None:
        del node["properties"][path[-1]]
    else:
        node["properties"][path[-1]] = schema
    file.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _lines(chart: Path) -> list[str]:
    return [p.line() for p in docs.check(chart)]


# --- the real chart -------------------------------------------------------------------------


def test_the_chart_docs_and_schema_are_current() -> None:
    assert _lines(CHART) == []


def test_cli_check_passes_on_the_real_chart(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chart", "docs", "--check", "--chart", str(CHART)]) == 0
    assert "current" in capsys.readouterr().out


def test_every_contract_key_is_documented_in_the_table() -> None:
    table = (CHART / docs.README).read_text(encoding="utf-8")
    for key in (
        "image.repository", "image.tag", "image.pullPolicy", "gpu.vendor", "gpu.count",
        "gpu.nodeCapacity", "gpu.profile", "gpu.nvidia.runtimeClassName",
        "gpu.nvidia.resourceName", "gpu.amd.resourceName", "gpu.amd.image.repository",
        "gpu.amd.image.tag", "gpu.amd.supplementalGroups", "model.name", "model.revision",
        "model.servedModelName", "model.quantization", "model.dtype", "model.maxModelLen",
        "model.gpuMemoryUtilization", "model.maxNumSeqs", "model.maxNumBatchedTokens",
        "model.kvCacheDtype", "model.enablePrefixCaching", "model.enforceEager",
        "model.tensorParallelSize", "model.extraArgs", "model.extraConfig", "replicaCount",
        "strategy", "persistence.existingClaim", "resources", "nodeSelector", "tolerations",
        "affinity", "progressDeadlineSeconds", "ingress.enabled", "ingress.className",
        "ingress.annotations", "ingress.hosts", "ingress.tls", "test.argocdPostSync.enabled",
    ):  # fmt: skip
        assert f"| `{key}` |" in table, key


def test_image_docs_explain_driver_and_blackwell_limits() -> None:
    row = next(r for r in docs.rows(CHART) if r.key == "image.tag")
    for fact in ("575", "580", "sm_120", "v0.4.0", "CUDA 12.1"):
        assert fact in row.description, fact


# --- the checker catches what it must -------------------------------------------------------


def test_a_changed_description_makes_the_table_stale(
    chart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit_values(chart, "# -- Hugging Face repository", "# -- The Hugging Face repository")
    assert main(["chart", "docs", "--check", "--chart", str(chart)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "README.md" in err[0] and "stale" in err[0] and "archon chart docs --write" in err[0]

    assert main(["chart", "docs", "--write", "--chart", str(chart)]) == 0
    assert "The Hugging Face repository" in (chart / docs.README).read_text(encoding="utf-8")
    assert _lines(chart) == []


def test_a_changed_default_makes_the_table_stale(chart: Path) -> None:
    _edit_values(chart, "size: 50Gi", "size: 80Gi")
    lines = _lines(chart)
    assert len(lines) == 1 and "values table" in lines[0]


def test_an_undocumented_key_is_named(chart: Path) -> None:
    _edit_values(chart, "replicaCount: 1\n", "replicaCount: 1\n\nspareKnob: 3\n")
    _edit_schema(chart, ["spareKnob"], {"type": "integer"})
    lines = _lines(chart)
    assert any("spareKnob" in line and "no `# --` comment" in line for line in lines), lines


def test_a_key_missing_from_the_schema_is_named(chart: Path) -> None:
    _edit_schema(chart, ["model", "maxNumSeqs"], None)
    lines = _lines(chart)
    assert any(
        "model.maxNumSeqs" in line and "not in values.schema.json" in line for line in lines
    ), lines


def test_a_schema_property_missing_from_values_is_named(chart: Path) -> None:
    _edit_schema(chart, ["model", "loraRank"], {"type": "integer"})
    lines = _lines(chart)
    assert any("model.loraRank" in line and "not in values.yaml" in line for line in lines), lines


def test_an_open_object_schema_is_named(chart: Path) -> None:
    _edit_schema(
        chart, ["shm"], {"type": "object", "properties": {"sizeLimit": {"type": "string"}}}
    )
    lines = _lines(chart)
    assert any("shm" in line and "additionalProperties: false" in line for line in lines), lines


def test_a_default_that_breaks_the_schema_is_named(chart: Path) -> None:
    _edit_values(chart, "gpuMemoryUtilization: 0.9", "gpuMemoryUtilization: 1.2")
    lines = _lines(chart)
    assert any(
        "model.gpuMemoryUtilization" in line and "does not validate" in line for line in lines
    ), lines


def test_missing_markers_are_unusable(chart: Path) -> None:
    (chart / docs.README).write_text("# archon\n", encoding="utf-8")
    with pytest.raises(UsageError, match="markers"):
        docs.check(chart)


# --- the values scanner ---------------------------------------------------------------------


def test_scanner_follows_helm_docs_conventions() -> None:
    text = textwrap.dedent(
        """\
        # Section header, not documentation.
        # -- The first key,
        # continued here.
        first: 1

        # -- Ignored: a blank line separates it from the key.

        nested:
          # -- Inner key.
          # @default -- computed at render time
          inner: ""
          "quoted.key/name": x
          items:
            - name: a
              deep: b
          compact:
          - name: c
          script: |
            notakey: 1
          after: true
        """
    )
    keys = {k.path: k for k in docs.scan_keys(text)}
    assert set(keys) == {
        ("first",),
        ("nested",),
        ("nested", "inner"),
        ("nested", "quoted.key/name"),
        ("nested", "items"),
        ("nested", "compact"),
        ("nested", "script"),
        ("nested", "after"),
    }
    assert keys[("first",)].description == "The first key, continued here."
    assert keys[("nested",)].description is None
    assert keys[("nested", "inner")].default_text == "computed at render time"
    assert keys[("nested", "inner")].line == 11
    assert docs.dotted(("nested", "quoted.key/name")) == 'nested."quoted.key/name"'


def test_table_cells_escape_pipes() -> None:
    table = docs.render_table([docs.Row("a", "string", '"x|y"', "one | two")])
    assert table.splitlines()[-1] == '| `a` | string | `"x\\|y"` | one \\| two |'
