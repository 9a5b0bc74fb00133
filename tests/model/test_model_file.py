"""Model files (qep_analog.model.model_file) and QEPModel validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from qep_analog.errors import ConfigError, ModelFileError
from qep_analog.model import model_file
from qep_analog.model.model_file import load_model, model_from_document, save_model
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel


def docstring_example() -> str:
    """The YAML example of the model_file module docstring, dedented."""
    doc = model_file.__doc__
    assert doc is not None
    block = doc.split(".. code-block:: yaml", 1)[1]
    return textwrap.dedent(block).strip() + "\n"


VALID = docstring_example()


def write(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def expect_error(path: Path, *fragments: str) -> str:
    """Load ``path``, expect a one-line ModelFileError naming the file and every fragment."""
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_docstring_example_loads(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, VALID))
    assert model.n_qubits == 4
    assert model.fixed == pauli_sum([(-1.0, "Z0 Z1")])
    assert model.inputs == {"g": pauli_sum([(-1.0, "X0"), (-1.0, "X1")])}
    assert model.trainable == {"a": pauli_sum([(1.0, "Z1 Z2")])}
    assert model.outputs == {"m": pauli_sum([(1.0, "Z3")])}
    assert model.input_names == ["g"]
    assert model.parameter_names == ["a"]
    assert model.output_names == ["m"]


def assert_same_model(a: QEPModel, b: QEPModel) -> None:
    assert a.n_qubits == b.n_qubits
    assert a.fixed == b.fixed
    for section in ("inputs", "trainable", "outputs"):
        assert list(getattr(a, section)) == list(getattr(b, section))  # order kept
        assert getattr(a, section) == getattr(b, section)


def test_round_trip_docstring_example(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, VALID))
    target = tmp_path / "sub" / "copy.yaml"
    save_model(model, target)
    assert_same_model(load_model(target), model)
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_round_trip_random_model(tmp_path: Path, random_model) -> None:
    model = random_model(5, seed=3)
    save_model(model, tmp_path / "random.yaml")
    again = load_model(tmp_path / "random.yaml")
    assert_same_model(again, model)
    x, theta = np.full(2, 0.3), np.full(3, -0.2)
    np.testing.assert_array_equal(
        again.compiled.hamiltonian(x, theta).toarray(), model.compiled.hamiltonian(x, theta).toarray()
    )


def test_round_trip_number_operators_and_no_inputs(tmp_path: Path) -> None:
    text = """\
        schema: qep-model/1
        n_qubits: 2
        trainable:
          w: [[0.25, "N0 N1"]]
        outputs:
          p1: [[1.0, "N1"], [1.0e-20, "X0"]]
        """
    model = load_model(write(tmp_path, textwrap.dedent(text)))
    assert model.inputs == {}
    assert model.fixed == pauli_sum([])
    assert model.trainable["w"] == pauli_sum([(0.25, "N0 N1")])
    save_model(model, tmp_path / "copy.yaml")
    assert_same_model(load_model(tmp_path / "copy.yaml"), model)


def replace(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (VALID + "extra: 1\n", ["unknown key 'extra'"]),
        (replace('"Z3"', '"Z4"'), ["outputs.m[0]", "qubit index 4", "n_qubits = 4"]),
        (replace('"Z1 Z2"', '"Z1 Q2"'), ["trainable.a[0]", "unknown operator letter 'Q'"]),
        (replace('"Z1 Z2"', '"Z1 Z1"'), ["trainable.a[0]", "qubit 1 appears twice"]),
        (replace("[1.0,", "[abc,"), ["trainable.a[0]", "coefficient = 'abc' is not a number"]),
        (replace("[1.0,", '["1.0",'), ["trainable.a[0]", "is not a number"]),
        (replace("[1.0,", "[true,"), ["trainable.a[0]", "is not a number"]),
        (replace("[1.0,", "[.nan,"), ["trainable.a[0]", "not finite"]),
        (replace("[-1.0,", "[.inf,"), ["fixed[0]", "not finite"]),
        (replace("[-1.0,", "[-.inf,"), ["fixed[0]", "not finite"]),
        (replace('[1.0, "Z3"]', '[1.0, "Z3", 2]'), ["outputs.m[0]", "pair"]),
        (replace('[1.0, "Z3"]', "[1.0, 3]"), ["outputs.m[0]", "not a non-empty string"]),
        (replace("  m: [[1.0,", "  m: 7\n  n: [[1.0,"), ["outputs.m", "list"]),
        (replace("qep-model/1", "qep-model/2"), ["schema = 'qep-model/2'", "qep-model/1"]),
        (replace("n_qubits: 4", "n_qubits: four"), ["n_qubits = 'four'"]),
        (replace("n_qubits: 4", "n_qubits: 4.0"), ["n_qubits = 4.0"]),
        (replace("n_qubits: 4", "n_qubits: true"), ["n_qubits = True"]),
        (replace("n_qubits: 4", "n_qubits: 0"), ["n_qubits = 0"]),
        (replace("  a: [[1.0,", "  9a: [[1.0,"), ["trainable", "'9a'", "not an identifier"]),
        (replace("  m: [[1.0,", "  a: [[1.0,"), ["'a'", "trainable", "outputs"]),
        (replace("  m: [[1.0,", "  g: [[1.0,"), ["'g'", "inputs", "outputs"]),
        (replace("outputs:", "outputs: {}\nunused:"), ["unknown key 'unused'"]),
        ("- 1\n- 2\n", ["mapping"]),
        ("schema: [unclosed\n", ["invalid YAML"]),
    ],
    ids=[
        "unknown-key",
        "qubit-out-of-range",
        "unknown-letter",
        "repeated-qubit",
        "coefficient-word",
        "coefficient-string",
        "coefficient-bool",
        "coefficient-nan",
        "coefficient-inf",
        "coefficient-minus-inf",
        "not-a-pair",
        "operator-not-string",
        "terms-not-list",
        "schema-wrong",
        "n_qubits-word",
        "n_qubits-float",
        "n_qubits-bool",
        "n_qubits-zero",
        "bad-name",
        "name-in-two-sections",
        "input-and-output-name",
        "unknown-key-2",
        "not-mapping",
        "yaml-syntax",
    ],
)
def test_bad_files(tmp_path: Path, text: str, fragments: list[str]) -> None:
    expect_error(write(tmp_path, text), *fragments)


def test_duplicate_name_within_section(tmp_path: Path) -> None:
    text = replace('  a: [[1.0, "Z1 Z2"]]\n', '  a: [[1.0, "Z1 Z2"]]\n  a: [[2.0, "Z0"]]\n')
    line = text.splitlines().index('  a: [[2.0, "Z0"]]') + 1
    expect_error(write(tmp_path, text), "duplicate key 'a'", f"line {line}")


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    expect_error(write(tmp_path, VALID + "n_qubits: 5\n"), "duplicate key 'n_qubits'")


@pytest.mark.parametrize("key", ["schema", "n_qubits", "trainable", "outputs"])
def test_missing_required_section(tmp_path: Path, key: str) -> None:
    document = {
        "schema": "qep-model/1",
        "n_qubits": 2,
        "trainable": {"a": [[1.0, "X0"]]},
        "outputs": {"m": [[1.0, "Z1"]]},
    }
    del document[key]
    import yaml

    path = write(tmp_path, yaml.safe_dump(document))
    expect_error(path, f"missing key {key}")


@pytest.mark.parametrize("section", ["trainable", "outputs"])
def test_empty_required_section(tmp_path: Path, section: str) -> None:
    text = VALID.split(f"{section}:")[0] + f"{section}:\n"
    if section == "trainable":
        text += 'outputs:\n  m: [[1.0, "Z3"]]\n'
    expect_error(write(tmp_path, text), section, "empty")


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "absent.yaml", "no such file")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    expect_error(tmp_path, "directory")


def test_model_from_document_source_name() -> None:
    with pytest.raises(ModelFileError, match=r"^inline: unknown key 'bogus'"):
        model_from_document({"bogus": 1}, source="inline")


# --- QEPModel itself --------------------------------------------------------------------------


def small_model(**changes) -> QEPModel:
    arguments = {
        "n_qubits": 2,
        "trainable": {"a": pauli_sum([(1.0, "X0")])},
        "outputs": {"m": pauli_sum([(1.0, "Z1")])},
        "inputs": {"g": pauli_sum([(1.0, "Z0")])},
    }
    arguments.update(changes)
    return QEPModel(**arguments)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"n_qubits": 0}, "n_qubits = 0"),
        ({"n_qubits": -1}, "n_qubits = -1"),
        ({"n_qubits": 2.0}, "n_qubits = 2.0"),
        ({"trainable": {}}, "trainable has no terms"),
        ({"outputs": {}}, "outputs has no terms"),
        ({"outputs": {"a": pauli_sum([(1.0, "Z1")])}}, "'a' is used in both trainable and outputs"),
        ({"trainable": {"a": pauli_sum([(1.0, "X2")])}}, "trainable.a acts on qubit 2"),
        ({"fixed": pauli_sum([(1.0, "X5")])}, "fixed acts on qubit 5"),
        ({"outputs": {"m": "Z1"}}, "outputs.m is str, not a PauliSum"),
    ],
)
def test_qep_model_validation(changes, fragment: str) -> None:
    with pytest.raises(ModelFileError) as info:
        small_model(**changes)
    assert fragment in str(info.value)


def test_state_vector_limit_is_where_state_vectors_are_built() -> None:
    # a 64-qubit model is valid (tensor networks solve it); compiling it for state vectors is not
    model = small_model(n_qubits=64, outputs={"m": pauli_sum([(1.0, "Z63")])})
    assert model.n_qubits == 64
    with pytest.raises(ConfigError, match="64 qubits exceed the state-vector limit of 30"):
        _ = model.compiled


def test_qep_model_vector() -> None:
    model = small_model()
    np.testing.assert_array_equal(model.vector("trainable", {"a": 0.5}, 0.0), [0.5])
    np.testing.assert_array_equal(model.vector("inputs", None, 2.0), [2.0])
    with pytest.raises(ConfigError, match=r"unknown name 'b'.*valid: a"):
        model.vector("trainable", {"b": 1.0}, 0.0)


def test_compiled_coefficients_and_shape_errors(dense_reference) -> None:
    model = small_model(fixed=pauli_sum([(0.5, "X0 X1")]))
    compiled = model.compiled
    assert model.compiled is compiled  # built once
    h = compiled.hamiltonian([0.3], [0.7], [-1.1]).toarray()
    expected = dense_reference(pauli_sum([(0.5, "X0 X1"), (0.3, "Z0"), (0.7, "X0"), (-1.1, "Z1")]), 2)
    np.testing.assert_allclose(h, expected, atol=1e-14)
    batch = compiled.coefficients(np.zeros((4, 1)), [0.7], np.ones((4, 1)))
    assert batch.shape == (4, len(compiled.table.strings))
    with pytest.raises(ConfigError, match="theta has shape"):
        compiled.coefficients([0.3], [0.7, 0.1])
    with pytest.raises(ConfigError, match="x has shape"):
        compiled.coefficients([0.3, 0.1], [0.7])
    with pytest.raises(ConfigError, match="nu has shape"):
        compiled.coefficients([0.3], [0.7], [1.0, 2.0])


def test_a_model_without_inputs_keeps_the_batch_of_x() -> None:
    """x of shape (B, 0) still says B samples: each gets its own theta row and nudge."""
    model = QEPModel(2, {"a": pauli_sum([(1.0, "X0")])}, {"m": pauli_sum([(1.0, "Z1")])})
    compiled = model.compiled
    batch = compiled.coefficients(np.zeros((3, 0)), [0.7], [[1.0], [0.0], [-1.0]])
    assert batch.shape == (3, len(compiled.table.strings))
    alone = compiled.coefficients(np.zeros((3, 0)), [0.7])
    assert alone.shape == (3, len(compiled.table.strings))
    np.testing.assert_array_equal(alone[0], compiled.coefficients(np.zeros(0), [0.7]))
    from qep_analog.qep.gradients import qep_gradient
    from qep_analog.solvers.equilibrium import Equilibrium

    eq = Equilibrium(QEPModel(2, {"a": pauli_sum([(1.0, "X0")])}, {"m": pauli_sum([(1.0, "Z0")])},
                              pauli_sum([(-1.0, "Z0 Z1"), (-0.4, "Z0")])))  # fmt: skip
    both = qep_gradient(eq, np.zeros((2, 0)), [0.7], [[1.0], [-0.5]], 1e-3)
    for b, eps in enumerate((1.0, -0.5)):
        np.testing.assert_allclose(both[b], qep_gradient(eq, np.zeros((1, 0)), [0.7], [[eps]], 1e-3)[0])


def test_large_models_load_for_tensor_network_backends() -> None:
    """Model files have no state-vector limit; building state-vector operators does."""
    document = {
        "schema": "qep-model/1",
        "n_qubits": 40,
        "trainable": {"h": [[1.0, f"X{q}"] for q in range(40)]},
        "outputs": {"m": [[1.0, "Z39"]]},
    }
    model = model_from_document(document)
    assert model.n_qubits == 40
    with pytest.raises(ConfigError, match="40"):
        model.compiled  # noqa: B018
    with pytest.raises(ModelFileError, match="n_qubits = 0 breaks the rule n_qubits >= 1"):
        model_from_document({**document, "n_qubits": 0})


def test_pickled_models_leave_their_compiled_operators_behind() -> None:
    """Executors send models to workers: the compiled tables (megabytes) are rebuilt there."""
    import pickle

    from qep_analog.model.standard import phase_sensor

    model = phase_sensor(6)
    before = len(pickle.dumps(model))
    dim = model.compiled.dim  # builds the operator tables
    copy = pickle.loads(pickle.dumps(model))
    assert len(pickle.dumps(model)) == before
    assert copy.compiled.dim == dim and copy.parameter_names == model.parameter_names


def test_an_identity_or_empty_output_is_refused() -> None:
    with pytest.raises(
        ModelFileError, match=r"outputs.m is the identity: its expectation value is a constant"
    ):
        small_model(outputs={"m": pauli_sum([(2.0, "I")])})
    with pytest.raises(ModelFileError, match=r"outputs.m is empty"):
        small_model(outputs={"m": pauli_sum([(0.0, "Z0")])})
    assert small_model(outputs={"p": pauli_sum([(0.5, "I"), (0.5, "Z0")])}).output_names == ["p"]


def test_values_not_given_need_a_default(tmp_path: Path) -> None:
    model = small_model()
    with pytest.raises(ConfigError, match=r"^--theta: a not given and without a default"):
        model.values("trainable", {}, "--theta")
    np.testing.assert_array_equal(model.values("trainable", {"a": 0.5}, "--theta"), [0.5])
    stated = QEPModel(
        n_qubits=model.n_qubits, fixed=model.fixed, inputs=model.inputs, trainable=model.trainable,
        outputs=model.outputs, defaults={"a": 0.25},
    )  # fmt: skip
    np.testing.assert_array_equal(stated.values("trainable", {}, "--theta"), [0.25])
    np.testing.assert_array_equal(stated.values("trainable", {"a": -1.0}, "--theta"), [-1.0])
    path = tmp_path / "m.yaml"
    save_model(stated, path)
    assert load_model(path).defaults == {"a": 0.25}
    with pytest.raises(ModelFileError, match=r"default for 'zz', not an input or parameter"):
        QEPModel(n_qubits=2, trainable=model.trainable, outputs=model.outputs, defaults={"zz": 1.0})
