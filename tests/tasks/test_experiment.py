"""Experiment files (qep-experiment/1): the example file, overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import qep_analog as qa
from qep_analog.errors import ConfigError
from qep_analog.qep.losses import CrossEntropy, SquaredError
from qep_analog.tasks.experiment import load_experiment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TINY = """\
schema: qep-experiment/1
name: tiny
task: phase_sensor
model:
  n_chain: 3
training:
  steps: 4
  batch_size: 4
  shots: null
  checkpoint_every: 2
evaluation:
  test_size: 10
  every: 2
"""


def write(tmp_path: Path, text: str, name: str = "experiment.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file() -> None:
    experiment = load_experiment(EXAMPLES / "phase_sensor.yaml")
    assert experiment.name == "phase_sensor"
    assert experiment.output == Path("runs/phase_sensor")
    config = experiment.training
    assert (config.steps, config.batch_size, config.beta, config.shots) == (1000, 10, 0.4, 10)
    assert (config.estimator, config.scheme, config.optimizer) == ("qep", "symmetric", "adam")
    assert config.learning_rate == 0.01 and config.seed == 0
    assert config.checkpoint_every == 50 and config.eval_every == 50
    assert config.solver_tol == 1e-6
    task = experiment.task
    assert task.n_chain == 8 and task.model.n_qubits == 10
    assert len(task.model.parameter_names) == 51
    assert task.test_size == 200 and task.init == "bounded"
    assert isinstance(task.loss, SquaredError)
    assert experiment.penalty is not None
    assert (experiment.penalty.strength, experiment.penalty.threshold) == (0.02, 0.1)
    np.testing.assert_array_equal(experiment.penalty.mask, task.coupling_mask)
    assert int(experiment.penalty.mask.sum()) == 36


def test_paper_example_file() -> None:
    experiment = load_experiment(EXAMPLES / "phase_sensor_paper.yaml")
    assert experiment.training.steps == 5000
    assert experiment.name == "phase_sensor_paper"


def test_tiny_file_defaults_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, TINY.replace("name: tiny\n", ""))
    experiment = load_experiment(path, {"steps": 7, "seed": 5})
    assert experiment.name == "experiment"  # the file's stem
    assert experiment.output == Path("runs/experiment")
    assert experiment.training.steps == 7 and experiment.training.seed == 5
    assert experiment.task.seed == 5  # the test set follows the training seed
    assert experiment.training.eval_every == 2
    assert experiment.training.shots is None
    assert experiment.penalty is None


def test_optional_sections(tmp_path: Path) -> None:
    text = TINY.replace(
        "  checkpoint_every: 2\n",
        "  checkpoint_every: 2\n  loss: cross_entropy\n  bounds: [-2, 2]\n",
    ).replace("  n_chain: 3\n", "  n_chain: 3\n  sites: [1, 2]\n  patches: [[1.0, 0.5], [2.5, 0.5]]\n")
    experiment = load_experiment(write(tmp_path, text))
    assert isinstance(experiment.task.loss, CrossEntropy)
    assert experiment.training.bounds == (-2, 2)
    assert experiment.task.sites == (1, 2)
    assert experiment.task.patches is not None
    np.testing.assert_array_equal(experiment.task.patches, [[1.0, 0.5], [2.5, 0.5]])


@pytest.mark.parametrize("sections", ["", "training:\nevaluation:\n"])
def test_omitted_or_empty_sections_take_the_defaults(tmp_path: Path, sections: str) -> None:
    text = "schema: qep-experiment/1\ntask: phase_sensor\nmodel: {n_chain: 3}\n" + sections
    experiment = load_experiment(write(tmp_path, text))
    assert experiment.training.steps == 1000 and experiment.training.batch_size == 10
    assert experiment.penalty is None and isinstance(experiment.task.loss, SquaredError)
    assert experiment.task.test_size == 200


BAD_FILES = {
    "unknown top-level key": (TINY + "colour: blue\n", ["'colour'"]),
    "unknown training key": (
        TINY.replace("  steps: 4\n", "  steps: 4\n  momentum: 0.9\n"),
        ["training", "'momentum'"],
    ),
    "unknown model key": (
        TINY.replace("  n_chain: 3\n", "  n_chain: 3\n  n_sensor: 2\n"),
        ["model", "'n_sensor'"],
    ),
    "unknown evaluation key": (TINY + "  size: 3\n", ["evaluation", "'size'"]),
    "wrong schema": (TINY.replace("qep-experiment/1", "qep-experiment/2"), ["schema", "qep-experiment/2"]),
    "missing schema": (TINY.replace("schema: qep-experiment/1\n", ""), ["schema"]),
    "unknown task": (TINY.replace("task: phase_sensor", "task: sorting"), ["task", "'sorting'"]),
    "penalty not a mapping": (
        TINY.replace("  steps: 4\n", "  steps: 4\n  penalty: 0.02\n"),
        ["training.penalty"],
    ),
    "penalty value not a number": (
        TINY.replace("  steps: 4\n", "  steps: 4\n  penalty: {strength: strong, threshold: 0.1}\n"),
        ["training.penalty.strength"],
    ),
    "penalty missing key": (
        TINY.replace("  steps: 4\n", "  steps: 4\n  penalty: {strength: 0.02}\n"),
        ["training.penalty.threshold"],
    ),
    "penalty unknown key": (
        TINY.replace("  steps: 4\n", "  steps: 4\n  penalty: {strength: 0.02, threshold: 0.1, p: 2}\n"),
        ["training.penalty", "'p'"],
    ),
    "bad YAML syntax": (TINY.replace("  n_chain: 3\n", "  n_chain: [3\n"), ["invalid YAML", "line"]),
    "duplicate key": (TINY.replace("  steps: 4\n", "  steps: 4\n  steps: 5\n"), ["duplicate key 'steps'"]),
    "model section not a mapping": (TINY.replace("model:\n  n_chain: 3\n", "model: 3\n"), ["model"]),
    "top level not a mapping": ("- 1\n- 2\n", ["mapping"]),
    "bad training value": (TINY.replace("steps: 4", "steps: 0"), ["steps"]),
    "bad model value": (TINY.replace("n_chain: 3", "n_chain: 2"), ["n = 2"]),
    "bad model type": (TINY.replace("n_chain: 3", "n_chain: three"), ["experiment.yaml"]),
    "unknown loss": (TINY.replace("  steps: 4\n", "  steps: 4\n  loss: hinge\n"), ["'hinge'"]),
    "unknown init": (
        TINY.replace("  n_chain: 3\n", "  n_chain: 3\n  init: zeros\n"),
        ["zeros'", "neither"],
    ),
    "bad test size": (TINY.replace("test_size: 10", "test_size: 0"), ["test_size"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file(tmp_path: Path, case: str) -> None:
    text, fragments = BAD_FILES[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "case", ["unknown top-level key", "unknown training key", "wrong schema", "duplicate key"]
)
def test_bad_file_message_names_the_file(tmp_path: Path, case: str) -> None:
    path = write(tmp_path, BAD_FILES[case][0], name="my_run.yaml")
    with pytest.raises(ConfigError, match=r"my_run\.yaml"):
        load_experiment(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_experiment(tmp_path / "absent.yaml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load_experiment(tmp_path)


# Malformed values of the model/training sections must also give a ConfigError (one line on the
# command line), not a TypeError/ValueError/IndexError traceback.
MALFORMED_VALUES = {
    "sites not a list": ("  n_chain: 3\n", "  n_chain: 3\n  sites: 5\n"),
    "patches of 3 numbers": ("  n_chain: 3\n", "  n_chain: 3\n  patches: [[1.0, 0.5, 2.0]]\n"),
    "patches not numbers": ("  n_chain: 3\n", "  n_chain: 3\n  patches: [[a, 0.5]]\n"),
    "bounds of one number": ("  steps: 4\n", "  steps: 4\n  bounds: [1]\n"),
    "bounds a number": ("  steps: 4\n", "  steps: 4\n  bounds: 5\n"),
    "negative coupling range": ("  n_chain: 3\n", "  n_chain: 3\n  coupling_range: -1\n"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_VALUES))
def test_malformed_value(tmp_path: Path, case: str) -> None:
    old, new = MALFORMED_VALUES[case]
    path = write(tmp_path, TINY.replace(old, new))
    with pytest.raises(ConfigError) as info:
        experiment = load_experiment(path)
        # some problems only show when the task is used
        experiment.task.initial_parameters(np.random.default_rng(0))
        experiment.task.sample_batch(np.random.default_rng(0), 2)
    assert "\n" not in str(info.value)


# -- measured bitstrings and readout errors (issue 5) -------------------------------------------------


def test_bitstring_example_files() -> None:
    bits = load_experiment(EXAMPLES / "phase_sensor_bitstrings.yaml")
    assert bits.training.measurement == "bitstrings" and bits.training.shots == 10
    # the fresnel-like profile's readout errors
    assert (bits.training.readout_false_positive, bits.training.readout_false_negative) == (0.025, 0.10)
    assert bits.training.mitigate_readout is True
    exact = load_experiment(EXAMPLES / "phase_sensor_exact_values.yaml")
    assert exact.training.shots is None and exact.training.measurement == "gaussian"
    for key in ("steps", "seed", "beta", "learning_rate", "batch_size"):
        assert getattr(exact.training, key) == getattr(bits.training, key)


def test_explicit_readout_errors(tmp_path: Path) -> None:
    text = TINY.replace(
        "  shots: null\n",
        "  shots: 5\n  measurement: bitstrings\n"
        "  readout: {false_positive: 0.01, false_negative: 0.2, mitigate: false}\n",
    )
    training = load_experiment(write(tmp_path, text)).training
    assert (training.readout_false_positive, training.readout_false_negative) == (0.01, 0.2)
    assert training.mitigate_readout is False


@pytest.mark.parametrize(
    ("readout", "word"),
    [
        ("{device: nowhere-like}", "nowhere-like"),
        ("{device: fresnel-like, false_positive: 0.1}", "not both"),
        ("{colour: red}", "unknown key 'colour'"),
        ("{false_positive: 0.7}", r"training\.readout\.false_positive = 0\.7"),
        ("{false_positive: 0.1, mitigate: maybe}", "training.readout.mitigate = 'maybe'"),
        ("5", "expected a mapping"),
    ],
)
def test_bad_readout_section(tmp_path: Path, readout: str, word: str) -> None:
    text = TINY.replace("  shots: null\n", f"  shots: 5\n  measurement: bitstrings\n  readout: {readout}\n")
    with pytest.raises(ConfigError, match=word) as info:
        load_experiment(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_readout_without_bitstrings_is_refused(tmp_path: Path) -> None:
    text = TINY.replace("  shots: null\n", "  shots: 5\n  readout: {device: fresnel-like}\n")
    with pytest.raises(ConfigError, match="need measurement 'bitstrings'"):
        load_experiment(write(tmp_path, text))


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("name: ../../x", "is not a plain name"),
        ("name: a/b", "is not a plain name"),
        ("name: ..", "is not a plain name"),
        ("output: ../elsewhere", "outside the working directory"),
        ("output: /tmp/elsewhere", "outside the working directory"),
    ],
)
def test_a_file_cannot_write_outside_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, fragment: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, TINY.replace("name: tiny", line))
    with pytest.raises(ConfigError, match=fragment) as info:
        load_experiment(path)
    assert "\n" not in str(info.value) and "experiment.yaml" in str(info.value)
    if line.startswith("output"):  # the command line may choose any folder
        assert load_experiment(path, output=tmp_path.parent / "x").output == tmp_path.parent / "x"


def test_a_file_output_inside_the_working_directory_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, TINY + "output: results/./tiny\n")
    assert load_experiment(path).output == Path("results/./tiny")
    assert load_experiment(write(tmp_path, TINY)).output == Path("runs/tiny")


def _finished_run(folder: Path, value: float) -> Path:
    """A ``result.json`` whose parameters are all ``value`` (for the 3-spin chain of TINY)."""
    from qep_analog.qep.trainer import RESULT_SCHEMA
    from qep_analog.storage import write_json
    from qep_analog.tasks.phase_sensor import PhaseSensorTask

    names = PhaseSensorTask(n_chain=3, test_size=5).model.parameter_names
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "result.json", {"parameters": dict.fromkeys(names, value)}, RESULT_SCHEMA)
    return folder / "result.json"


def test_init_in_a_file_is_relative_to_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = tmp_path / "lab"
    _finished_run(lab / "results", 0.25)  # next to the file
    _finished_run(tmp_path / "results", -0.5)  # the same relative path from the working directory
    path = write(lab, TINY.replace("  n_chain: 3\n", "  n_chain: 3\n  init: results/result.json\n"))
    monkeypatch.chdir(tmp_path)
    for given in (path, path.relative_to(tmp_path)):  # absolute, or relative to the working directory
        experiment = load_experiment(given)
        theta = experiment.task.initial_parameters(np.random.default_rng(0))
        assert np.all(theta == 0.25), "init: read beside the file, not in the working directory"
    # a path given on the command line (--init) stays relative to the working directory
    experiment = load_experiment(path, init="results/result.json")
    assert np.all(experiment.task.initial_parameters(np.random.default_rng(0)) == -0.5)
    missing = TINY.replace("  n_chain: 3\n", "  n_chain: 3\n  init: nowhere/result.json\n")
    with pytest.raises(ConfigError, match=f"init '{lab / 'nowhere' / 'result.json'}' is neither"):
        load_experiment(write(lab, missing, "m.yaml"))


def test_device_files_named_in_a_file_are_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = tmp_path / "lab"
    profile = (Path(__file__).resolve().parents[2] / "devices" / "fresnel-like.yaml").read_text()
    (lab / "profiles").mkdir(parents=True)
    (lab / "profiles" / "ours.yaml").write_text(profile.replace("name: fresnel-like", "name: ours"))
    monkeypatch.chdir(tmp_path)
    readout = "  shots: 5\n  measurement: bitstrings\n  readout: {device: profiles/ours.yaml}\n"
    experiment = load_experiment(write(lab, TINY.replace("  shots: null\n", readout)))
    assert experiment.device is not None and experiment.device["name"] == "ours"
    device = load_experiment(write(lab, TINY + "device: profiles/ours.yaml\n", "d.yaml")).profile
    assert device is not None and device.name == "ours"
    named = load_experiment(write(lab, TINY + "device: aquila-like\n", "n.yaml")).profile
    assert named is not None and named.name == "aquila-like"  # a name stays a name


def test_backend_recipe_in_a_file_is_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = tmp_path / "lab"
    (lab / "recipes").mkdir(parents=True)
    recipe = (Path(__file__).resolve().parents[2] / "sequences" / "rydberg-aquila.yaml").read_text()
    (lab / "recipes" / "ramp.yaml").write_text(recipe)
    text = (EXAMPLES / "rydberg_sensor_device.yaml").read_text(encoding="utf-8")
    assert "recipe: rydberg-aquila" in text
    path = write(lab, text.replace("recipe: rydberg-aquila", "recipe: recipes/ramp.yaml"))
    monkeypatch.chdir(tmp_path)
    experiment = load_experiment(path.relative_to(tmp_path))
    assert experiment.backend is not None
    assert Path(experiment.backend["recipe"]) == Path("lab") / "recipes" / "ramp.yaml"
    assert load_experiment(EXAMPLES / "rydberg_sensor_device.yaml").backend["recipe"] == "rydberg-aquila"  # type: ignore[index]


@pytest.mark.parametrize(
    ("variant", "shipped", "changes"),
    [
        (
            "results/ion_sensor/ion_sensor_device_large_beta.yaml",
            "ion_sensor_device.yaml",
            {("training", "beta"): 0.02, ("training", "learning_rate"): 0.5},
        ),
        (
            "results/rydberg_sensor/rydberg_sensor_device_cutoff.yaml",
            "rydberg_sensor_device.yaml",
            {("model", "blockade_cutoff_rad_per_us"): 10.0},
        ),
    ],
)
def test_committed_variants_differ_from_the_shipped_files_only_where_they_say(
    variant: str, shipped: str, changes: dict[tuple[str, str], float]
) -> None:
    """The experiment files behind examples/results/ variants load, and are the shipped device
    files with only the keys their results README names changed (name and output aside)."""
    load_experiment(EXAMPLES / variant, nominal=True)
    ours, base = (
        yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8")) for name in (variant, shipped)
    )
    for (section, key), value in changes.items():
        assert ours[section].pop(key) == value
        base[section].pop(key, None)
    for data in (ours, base):
        del data["name"], data["output"]
    assert ours == base


@pytest.mark.parametrize(
    "path",
    [
        path
        for path in sorted((EXAMPLES / "results").rglob("*.yaml"))
        if "schema: qep-experiment/1" in path.read_text(encoding="utf-8")
    ],
    ids=lambda path: path.stem,
)
def test_committed_experiment_files_load(path: Path) -> None:
    """Every experiment file behind a committed result loads as it is (recipes beside it included)."""
    experiment = load_experiment(path, nominal=True)
    assert experiment.backend is not None and experiment.profile is not None
    recipe = qa.load_recipe(experiment.backend["recipe"])  # a name on the search path, or a file beside
    assert recipe.platform == experiment.profile.platform
