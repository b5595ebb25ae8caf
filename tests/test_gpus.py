"""GPU profiles: bundled data, name matching, user files, `archon gpus`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archon.errors import UsageError
from archon.preflight.profiles import load_profiles, normalize_name

DATA = Path(__file__).parent / "data" / "preflight"

REQUIRED = [
    "RTX 5070",
    "RTX 5070 Ti",
    "RTX 5080",
    "RTX 5090",
    "RTX 5060 Ti 16GB",
    "RTX 4060 Ti 16GB",
    "RTX 4070",
    "RTX 4080",
    "RTX 4090",
    "RTX 3090",
    "RX 7600 XT",
    "RX 7800 XT",
    "RX 7900 GRE",
    "RX 7900 XT",
    "RX 7900 XTX",
    "RX 9070 XT",
    "A10G",
    "L4",
    "L40S",
    "A100 40GB",
    "A100 80GB",
    "H100",
    "H20",
    "Tesla T4",
    "V100 32GB",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_cards_are_known(name: str) -> None:
    assert load_profiles().get(name) is not None


def test_facts_of_a_few_cards() -> None:
    profiles = load_profiles()
    rtx5070 = profiles.find("RTX 5070")
    assert (rtx5070.memory_mib, rtx5070.arch, rtx5070.vendor) == (12227, "sm_120", "nvidia")
    assert rtx5070.compute_capability == (12, 0)
    assert profiles.find("RX 7600 XT").arch == "gfx1102"
    assert profiles.find("RX 7900 XTX").compute_capability is None


def test_there_is_no_16gb_rtx_5070() -> None:
    assert load_profiles().get("RTX 5070 16GB") is None


@pytest.mark.parametrize(
    "spelling",
    ["rtx5080", "RTX 5080", "GeForce RTX 5080", "rtx-5080", "Rtx_5080", "nvidia geforce rtx 5080"],
)
def test_name_matching_ignores_case_spaces_and_prefixes(spelling: str) -> None:
    assert load_profiles().find(spelling).name == "RTX 5080"
    assert normalize_name(spelling) == "rtx5080"


def test_unknown_and_ambiguous_gpus_are_one_line_errors() -> None:
    with pytest.raises(UsageError) as err:
        load_profiles().find("RTX 9999")
    assert err.value.key == "gpu.profile" and "archon gpus" in err.value.fix
    with pytest.raises(UsageError, match="A100 40GB"):
        load_profiles().find("A100")  # 40 or 80 GB: the user must say


def test_user_profile_file_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    user = DATA / "user-gpus.yaml"
    assert load_profiles([user]).find("labcard").memory_mib == 20480
    assert load_profiles().get("labcard") is None
    monkeypatch.setenv("ARCHON_GPU_PROFILES", str(user))
    assert load_profiles().find("Lab Card 20GB").visible_gib == pytest.approx((20480 - 450) / 1024)


def test_user_profile_overrides_a_builtin_by_name(tmp_path: Path) -> None:
    file = tmp_path / "mine.yaml"
    file.write_text(
        "gpus:\n  - {name: RTX 5080, vendor: nvidia, arch: sm_120, memory_mib: 16000,"
        " bandwidth_gbs: 960}\n"
    )
    profiles = load_profiles([file])
    assert profiles.find("rtx5080").memory_mib == 16000
    assert sum(1 for p in profiles if p.name == "RTX 5080") == 1


def test_bad_profile_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="vendor"):
        load_profiles([DATA / "bad-gpus.yaml"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("cards: []\n")
    with pytest.raises(UsageError, match="gpus"):
        load_profiles([empty])


def test_gpus_command_json(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("gpus", "--output", "json")
    assert result.code == 0
    cards = json.loads(result.out)
    assert {"name", "vendor", "memory_mib", "arch"} <= set(cards[0])
    assert any(c["name"] == "RX 9070 XT" and c["vendor"] == "amd" for c in cards)


def test_gpus_command_table_with_user_file(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("gpus", "--gpu-profiles", str(DATA / "user-gpus.yaml"))
    assert result.code == 0 and "Lab Card 20GB" in result.out and "RTX 5090" in result.out


def test_user_profile_named_like_an_alias_replaces_the_card(tmp_path: Path) -> None:
    # "3090" is an alias of the built-in RTX 3090; a user file may redefine it under that name.
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "gpus:\n  - {name: '3090', vendor: nvidia, arch: sm_86, memory_mib: 24000,"
        " bandwidth_gbs: 900}\n"
    )
    profiles = load_profiles([mine])
    names = [p.name for p in profiles]  # iterating must not fail on the replaced entry
    assert names.count("3090") == 1 and "RTX 3090" not in names
    assert profiles.find("3090").memory_mib == 24000
