"""The installable product: one search path for named files, a lazy public API that the CLI alone
uses, the package list of the wheel, and a command line that starts without the heavy libraries."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import qep_analog
from qep_analog.cli import main
from qep_analog.errors import ConfigError, ProfileError
from qep_analog.library import BUILT_IN, USER_PATH, WORKING_DIRECTORY, builtin_directory, library_entries

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "scipy", "qutip", "pulser", "dask", "tenpy", "matplotlib")


def _user_profile(directory: Path, description: str) -> Path:
    text = (builtin_directory("devices") / "fresnel-like.yaml").read_text(encoding="utf-8")
    marker = (
        "description: Fresnel-like 2D Rb array, Rydberg level 60, global drive and a negative detuning map"
    )
    assert marker in text
    path = directory / "fresnel-like.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(marker, f"description: {description}"), encoding="utf-8")
    return path


def test_builtins_are_found_by_name() -> None:
    for kind, names in {
        "devices": ("fresnel-like", "aquila-like", "yb171-chain", "ca40-chain"),
        "sequences": ("rydberg-smooth", "rydberg-linear", "ion-exponential"),
        "calibration": ("rydberg-daily", "ion-daily", "rydberg-basic"),
    }.items():
        found = library_entries(kind)
        for name in names:
            assert found[name].origin in (BUILT_IN, WORKING_DIRECTORY)
            assert found[name].path.is_file()
        assert "history" not in found


def test_user_path_shadows_builtin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./devices here: the built-in is the one below the user's
    user = tmp_path / "lab"
    _user_profile(user / "devices", "our own array")
    monkeypatch.setenv("QEP_ANALOG_PATH", str(user))
    entry = library_entries("devices")["fresnel-like"]
    assert entry.origin == USER_PATH and entry.shadows == (BUILT_IN,)
    assert qep_analog.load_profile("fresnel-like").description == "our own array"

    assert main(["device", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("fresnel-like"))
    assert "[$QEP_ANALOG_PATH, shadows built-in]" in line and "our own array" in line
    assert main(["device", "list", "--json"]) == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fresnel-like"]["shadows"] == [BUILT_IN] and rows["aquila-like"]["origin"] == BUILT_IN


def test_working_directory_and_schema_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _user_profile(tmp_path / "devices", "the bench array")
    entry = library_entries("devices")["fresnel-like"]
    assert entry.origin == WORKING_DIRECTORY and entry.shadows == (BUILT_IN,)
    # a file directly in a QEP_ANALOG_PATH directory counts only for the kind its schema names
    flat = tmp_path / "flat"
    _user_profile(flat, "flat layout")
    recipe = builtin_directory("sequences") / "rydberg-smooth.yaml"
    (flat / "my-ramp.yaml").write_text(recipe.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("QEP_ANALOG_PATH", str(flat))
    assert library_entries("devices")["fresnel-like"].shadows == (WORKING_DIRECTORY, BUILT_IN)
    assert "my-ramp" in library_entries("sequences") and "my-ramp" not in library_entries("devices")
    assert qep_analog.load_recipe("my-ramp").name == "rydberg-smooth"


def test_unknown_names_are_one_line_errors() -> None:
    with pytest.raises(ProfileError, match=r"device 'nowhere': not a known name \(known: .*fresnel-like"):
        qep_analog.read_profile("nowhere")
    with pytest.raises(ConfigError, match=r"recipe 'nowhere': not a known name"):
        qep_analog.load_recipe("nowhere")


def test_version_and_public_api_resolve() -> None:
    assert qep_analog.__version__ == importlib.metadata.version("qep-analog")
    for name in qep_analog.__all__:
        assert getattr(qep_analog, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = qep_analog.nothing_here  # type: ignore[attr-defined]
    assert (Path(qep_analog.__file__).parent / "py.typed").is_file()


def test_type_checking_imports_match_the_public_names() -> None:
    tree = ast.parse(Path(qep_analog.__file__).read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If))
    imported = {
        (alias.name, node.module)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    homes = qep_analog._HOMES  # type: ignore[attr-defined]
    assert imported == set(homes.items())


def test_every_public_name_is_documented() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [name for name in qep_analog.__all__ if f"`{name}`" not in text]
    assert missing == []


def test_cli_uses_only_the_public_api() -> None:
    offenders = []
    for path in sorted((ROOT / "qep_analog" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
                if node.module == "qep_analog":
                    offenders += [
                        f"{path.name}: {a.name}" for a in node.names if a.name not in qep_analog.__all__
                    ]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            for module in modules:
                inside = module.startswith("qep_analog.")
                if inside and not module.startswith("qep_analog.cli"):
                    offenders.append(f"{path.name}: {module}")
    assert offenders == []


def test_wheel_package_list_is_complete() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "qep_analog").rglob("__init__.py")
    }
    listed = set(config["packages"])
    assert on_disk <= listed
    mapped = listed - on_disk
    kinds = ("devices", "sequences", "calibration", "docs")
    assert mapped == {f"qep_analog.builtin.{kind}" for kind in kinds}
    assert {config["package-dir"][p] for p in mapped} == set(kinds)


@pytest.mark.parametrize("argv", [["--help"], ["device", "list"], ["--version"]])
def test_start_up_imports_no_heavy_library(argv: list[str], tmp_path: Path) -> None:
    code = (
        "import sys\nfrom qep_analog.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
