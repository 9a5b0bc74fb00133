"""The layout of ``qep_analog.calibration``: framework, routines and fake labs in their own rooms.

Reading a runcard loads neither QuTiP nor Pulser, the registry imports a routine's module only when
the routine is asked for, and production code never imports the fake labs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qep_analog.calibration.registry import ROUTINE_MODULES, ROUTINE_NAMES, all_routines, routine_named
from qep_analog.calibration.routine import Routine
from qep_analog.errors import CalibrationError
from qep_analog.library import builtin_directory

PACKAGE = Path(__file__).resolve().parents[2] / "qep_analog"
FAKES = "qep_analog.calibration.fakes"
#: the only modules outside the fake labs that may import them
#: (the front door names them for type checkers only; at run time they resolve on first use)
#: the places that may import the fake labs: `calibrate --backend fake-lab`, the lazy public API, and
#: the `fake-lab` training backend (built only when named)
FAKE_IMPORTERS = {
    PACKAGE / "cli" / "calibrate.py",
    PACKAGE / "__init__.py",
    PACKAGE / "backends" / "configure.py",
}
RUNCARDS_DIR = builtin_directory("calibration")


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this project first on the path); its standard output."""
    root = str(PACKAGE.parent)
    prelude = f"import sys; sys.path.insert(0, {root!r})\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        timeout=120,
    )
    return done.stdout.strip()


def test_parsing_the_daily_runcards_imports_neither_qutip_nor_pulser() -> None:
    rydberg, ion = RUNCARDS_DIR / "rydberg-daily.yaml", RUNCARDS_DIR / "ion-daily.yaml"
    out = run_python(
        f"""
        import sys
        from qep_analog.calibration.runcard import load_runcard
        load_runcard({str(rydberg)!r})
        load_runcard({str(ion)!r})
        print('qutip' in sys.modules, 'pulser' in sys.modules)
        """
    )
    assert out == "False False"


def test_importing_every_routine_imports_neither_qutip_nor_pulser() -> None:
    out = run_python(
        """
        import sys
        from qep_analog.calibration.registry import all_routines
        all_routines()
        print('qutip' in sys.modules, 'pulser' in sys.modules)
        """
    )
    assert out == "False False"


def test_the_registry_imports_a_routine_module_only_when_asked() -> None:
    out = run_python(
        """
        import sys
        from qep_analog.calibration.registry import routine_named
        prefix = 'qep_analog.calibration.routines.'
        before = sorted(m for m in sys.modules if m.startswith(prefix))
        routine_named('rabi')
        after = sorted(m for m in sys.modules if m.startswith(prefix))
        print(before, prefix + 'rabi' in after, prefix + 'ramsey' in after)
        """
    )
    assert out == "[] True False"


def test_every_name_maps_to_its_routine() -> None:
    routines = all_routines()
    assert tuple(routines) == ROUTINE_NAMES == tuple(ROUTINE_MODULES)
    for name, routine in routines.items():
        assert isinstance(routine, Routine) and routine.name == name
        assert routine_named(name) is routine  # one instance per routine
        assert ROUTINE_MODULES[name] == f"qep_analog.calibration.routines.{name}"


def test_an_unknown_routine_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(CalibrationError) as caught:
        routine_named("nonesuch")
    message = str(caught.value)
    assert message == f"routine 'nonesuch': unknown (known: {', '.join(ROUTINE_NAMES)})"
    assert "\n" not in message


def _imported_modules(tree: ast.AST) -> set[str]:
    """Every module an ``import`` or ``from … import`` statement names (nested ones included); for
    ``from package import name``, ``package.name`` too, since the name may be a module."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_production_code_never_imports_the_fake_labs() -> None:
    fakes_dir = PACKAGE / "calibration" / "fakes"
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in FAKE_IMPORTERS or fakes_dir in path.parents:
            continue
        modules = _imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if any(m == FAKES or m.startswith(FAKES + ".") for m in modules):
            offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert offenders == []


def test_the_import_check_sees_every_spelling() -> None:
    spellings = [
        "import qep_analog.calibration.fakes.rydberg_lab",
        "from qep_analog.calibration.fakes.ion_lab import FakeIonLab",
        "from qep_analog.calibration import fakes",
        "def f():\n    from qep_analog.calibration.fakes import schedule_lab",
    ]
    for code in spellings:
        modules = _imported_modules(ast.parse(code))
        assert any(m == FAKES or m.startswith(FAKES + ".") for m in modules), code
