"""Standard models: cluster-Ising chain, transverse-field Ising chain, the phase sensor."""

from __future__ import annotations

from collections.abc import Sequence

from qep_analog.errors import ConfigError
from qep_analog.model.pauli import PauliSum, pauli_sum
from qep_analog.model.qep_model import QEPModel


def chain_bonds(n: int, span: int, periodic: bool) -> list[tuple[int, ...]]:
    """Consecutive site tuples ``(j, j+1, ..., j+span-1)`` of a chain, wrapped when periodic."""
    last = n if periodic else n - span + 1
    return [tuple((j + d) % n for d in range(span)) for j in range(max(last, 0))]


def cluster_ising_terms(n: int, periodic: bool) -> dict[str, PauliSum]:
    """The three sums of the cluster-Ising chain: ``zxz`` = sum Z X Z, ``zz`` = sum Z Z, ``x`` = sum X."""
    if n < 3:
        raise ConfigError(f"cluster-Ising chain: n = {n} sites, at least 3 are needed")
    return {
        "zxz": pauli_sum((1.0, f"Z{a} X{b} Z{c}") for a, b, c in chain_bonds(n, 3, periodic)),
        "zz": pauli_sum((1.0, f"Z{a} Z{b}") for a, b in chain_bonds(n, 2, periodic)),
        "x": pauli_sum((1.0, f"X{j}") for j in range(n)),
    }


def cluster_ising(n: int = 8, periodic: bool = True) -> QEPModel:
    """H = g_ZXZ sum ZXZ - g_ZZ sum ZZ - g_X sum X with inputs (g_zxz, g_zz, g_x).

    Trainable: a uniform longitudinal field ``hz`` (sum Z); output: ``zz`` = <Z_0 Z_1>.
    """
    terms = cluster_ising_terms(n, periodic)
    return QEPModel(
        n_qubits=n,
        inputs={"g_zxz": terms["zxz"], "g_zz": -1.0 * terms["zz"], "g_x": -1.0 * terms["x"]},
        trainable={"hz": pauli_sum((1.0, f"Z{j}") for j in range(n))},
        outputs={"zz": pauli_sum([(1.0, "Z0 Z1")])},
    )


def transverse_field_ising(n: int, periodic: bool = False) -> QEPModel:
    """H = J (-sum Z Z) + h (-sum X) with trainable J and h; outputs the mean magnetisations."""
    if n < 2:
        raise ConfigError(f"transverse-field Ising chain: n = {n} sites, at least 2 are needed")
    return QEPModel(
        n_qubits=n,
        trainable={
            "J": pauli_sum((-1.0, f"Z{a} Z{b}") for a, b in chain_bonds(n, 2, periodic)),
            "h": pauli_sum((-1.0, f"X{j}") for j in range(n)),
        },
        outputs={
            "mz": pauli_sum((1.0 / n, f"Z{j}") for j in range(n)),
            "mx": pauli_sum((1.0 / n, f"X{j}") for j in range(n)),
        },
    )


SENSOR_LABELS = ("A", "B")
SENSOR_OUTPUTS = {"P00": (1, 1), "P01": (1, -1), "P11": (-1, -1)}


def phase_sensor(
    n_chain: int = 8,
    sites: Sequence[int] = (0, 1),
    system_operators: str = "XYZ",
    periodic: bool = True,
) -> QEPModel:
    """The cluster-Ising chain coupled to a two-qubit sensor (qubits ``n_chain``, ``n_chain + 1``).

    Trainable: every product ``sigma_s tau_t`` of a system Pauli (letters ``system_operators``) on
    the chain ``sites`` with a sensor Pauli (named ``c_X0_XA``), then the sensor terms: single
    Paulis ``s_XA`` and products ``s_XA_YB``. Outputs: projectors of one Z_A Z_B measurement,
    ``P00 = (1 + Z_A)(1 + Z_B)/4``, ``P01 = (1 + Z_A)(1 - Z_B)/4``, ``P11 = (1 - Z_A)(1 - Z_B)/4``.
    Inputs (g_zxz, g_zz, g_x) as in :func:`cluster_ising`.
    """
    letters = [c for c in system_operators if c in "XYZ"]
    if not letters or len(letters) != len(system_operators) or len(set(letters)) != len(letters):
        raise ConfigError(
            f"phase sensor: system_operators {system_operators!r} must be distinct letters of XYZ"
        )
    if not sites or any(not 0 <= s < n_chain for s in sites) or len(set(sites)) != len(sites):
        raise ConfigError(f"phase sensor: sites {list(sites)} must be distinct in 0..{n_chain - 1}")
    a, b = n_chain, n_chain + 1
    qubit = dict(zip(SENSOR_LABELS, (a, b), strict=True))
    terms = cluster_ising_terms(n_chain, periodic)
    trainable: dict[str, PauliSum] = {}
    for site in sites:
        for sigma in letters:
            for label in SENSOR_LABELS:
                for tau in "XYZ":
                    op = f"{sigma}{site} {tau}{qubit[label]}"
                    trainable[f"c_{sigma}{site}_{tau}{label}"] = pauli_sum([(1.0, op)])
    for label in SENSOR_LABELS:
        for tau in "XYZ":
            trainable[f"s_{tau}{label}"] = pauli_sum([(1.0, f"{tau}{qubit[label]}")])
    for tau in "XYZ":
        for tau2 in "XYZ":
            trainable[f"s_{tau}A_{tau2}B"] = pauli_sum([(1.0, f"{tau}{a} {tau2}{b}")])
    outputs = {
        name: pauli_sum(
            [
                (0.25, "I"),
                (0.25 * sa, f"Z{a}"),
                (0.25 * sb, f"Z{b}"),
                (0.25 * sa * sb, f"Z{a} Z{b}"),
            ]
        )
        for name, (sa, sb) in SENSOR_OUTPUTS.items()
    }
    return QEPModel(
        n_qubits=n_chain + 2,
        inputs={"g_zxz": terms["zxz"], "g_zz": -1.0 * terms["zz"], "g_x": -1.0 * terms["x"]},
        trainable=trainable,
        outputs=outputs,
    )


def is_coupling(name: str) -> bool:
    """Whether a phase-sensor parameter name is a system-sensor coupling (not a sensor term)."""
    return name.startswith("c_")
