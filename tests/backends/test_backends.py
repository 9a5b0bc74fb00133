"""The backend contract: phase jobs, the exact and QuTiP backends on a Rydberg chain and an ion chain,
gradients from their counts within error bars of the exact QEP gradient, the lazy registry."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qep_analog as qa
from qep_analog.backends.estimate import sample_gradients
from qep_analog.backends.jobs import PhaseJob, phase_jobs
from qep_analog.backends.registry import BACKENDS, make_backend
from qep_analog.devices.ions import IonControls
from qep_analog.devices.ions import realize as realize_ions
from qep_analog.errors import ConfigError, MeasurementError
from qep_analog.model.pauli import pauli_sum
from qep_analog.model.qep_model import QEPModel

CHAIN = "examples/models/rydberg_chain.yaml"
BETA = 0.1


def _chain() -> tuple[QEPModel, qa.DeviceProfile, np.ndarray]:
    model = qa.load_model(Path(__file__).resolve().parents[2] / CHAIN)
    profile = qa.read_profile("fresnel-like", relaxed=True)
    theta = model.vector("trainable", {"h": 4, "delta": 3, "s": 0.5, "J": 1.5}, 0.0)
    return model, profile, theta


def _ions() -> tuple[QEPModel, qa.DeviceProfile, np.ndarray]:
    profile = qa.read_profile("yb171-chain")
    n = 4
    couplings = realize_ions(IonControls(np.full(n, 1.5), 30.0), profile).couplings
    fixed = pauli_sum((couplings[i, j], f"X{i} X{j}") for i in range(n) for j in range(i + 1, n))
    trainable = {f"b{i}": pauli_sum([(1.0, f"Z{i}")]) for i in range(n)}
    model = QEPModel(n, trainable, {"m": pauli_sum([(1.0, "Z0")])}, fixed)
    return model, profile, np.array([0.004, 0.002, 0.003, 0.0025])


def test_phase_jobs_of_both_schemes() -> None:
    x = np.array([[0.1, 0.2], [0.3, 0.4]])
    eps = np.array([[1.0, -2.0], [0.5, 0.0]])
    jobs = phase_jobs(x, [0.7], eps, 0.05, "symmetric", ["ZZ", "XX"], 100)
    assert [j.key for j in jobs] == ["0/plus", "0/minus", "0/free", "1/plus", "1/minus", "1/free"]
    assert jobs[1].nu == pytest.approx((-0.05, 0.1)) and jobs[2].nu == (0.0, 0.0)
    assert jobs[3].x == (0.3, 0.4) and jobs[3].theta == (0.7,) and jobs[3].bases == ("ZZ", "XX")
    one_sided = phase_jobs(x[0], [0.7], eps[0], 0.05, "one-sided", ["ZZ"], None, free_phase=False)
    assert [j.phase for j in one_sided] == ["plus", "free"]  # one-sided always needs the free phase
    with pytest.raises(ConfigError, match=r"phase job '0/plus': shots = 0 must be a positive integer"):
        PhaseJob(0, "plus", (), (), (), ("Z",), 0)
    with pytest.raises(ConfigError, match=r"beta = -0\.1 must be positive"):
        phase_jobs(x, [0.7], eps, -0.1, "symmetric", ["ZZ"], None)


@pytest.mark.parametrize("scheme", ["symmetric", "one-sided"])
def test_exact_backend_is_the_qep_gradient(scheme: str) -> None:
    model, profile, theta = _chain()
    backend = make_backend("exact", model, profile)
    jobs = phase_jobs(np.zeros((2, 0)), theta, [[1.0], [-0.5]], BETA, scheme, [], None)
    gradients = sample_gradients(backend.model, jobs, backend.run(jobs), BETA, scheme)
    reference = qa.qep_gradient(
        qa.Equilibrium(backend.model, tol=1e-10), np.zeros((2, 0)), theta, [[1.0], [-0.5]], BETA, scheme
    )
    for b, gradient in enumerate(gradients):
        np.testing.assert_allclose(gradient.values, reference[b], rtol=0, atol=1e-7)
        assert not gradient.standard_errors.any()


@pytest.mark.parametrize("platform", ["rydberg", "ion"])
def test_counts_give_the_gradient_within_error_bars(platform: str) -> None:
    model, profile, theta = _chain() if platform == "rydberg" else _ions()
    n = model.n_qubits
    bases = ["Z" * n, "X" * n] if platform == "rydberg" else ["Z" * n]
    exact = make_backend("exact", model, profile)
    exact_jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", bases, None)
    truth = sample_gradients(exact.model, exact_jobs, exact.run(exact_jobs), BETA, "symmetric")[0]
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", bases, 20_000)
    counted = make_backend("exact", model, profile, seed=3)
    batch = counted.run(jobs)
    g = sample_gradients(counted.model, jobs, batch, BETA, "symmetric", counted.readout)[0]
    assert (g.standard_errors > 0).all()
    assert np.abs(g.values - truth.values).max() < 4 * g.standard_errors.max()
    assert g.outputs is not None and g.output_errors is not None and truth.outputs is not None
    assert np.abs(g.outputs - truth.outputs).max() < 4 * g.output_errors.max()
    assert batch.metadata["device"]["name"] == profile.name and batch.metadata["backend"] == "exact"


def test_qutip_backend_on_the_rydberg_chain() -> None:
    model, profile, theta = _chain()
    exact = make_backend("exact", model, profile)
    bases = ["Z" * 6, "X" * 6]
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", bases, None)
    truth = sample_gradients(exact.model, jobs, exact.run(jobs), BETA, "symmetric")[0].values
    deviation = {}
    for duration in (4.0, 20.0):
        recipe = dataclasses.replace(qa.load_recipe("rydberg-smooth"), duration=duration)
        backend = make_backend("qutip", model, profile, recipe)
        emulated = sample_gradients(backend.model, jobs, backend.run(jobs), BETA, "symmetric")[0].values
        deviation[duration] = np.abs(emulated - truth).max() / np.abs(truth).max()
    assert deviation[20.0] < 0.02 < 0.1 < deviation[4.0]  # a fast ramp is biased; a slow one is not

    counted = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", bases, 20_000)
    batch = backend.run(counted)
    g = sample_gradients(backend.model, counted, batch, BETA, "symmetric")[0]
    assert np.abs(g.values - truth).max() < 4 * g.standard_errors.max() + 0.02 * np.abs(truth).max()
    # device time: 3 phases × 2 bases × 20 000 shots of a 20 µs schedule and the per-shot overhead
    per_shot = 20.0 + profile.capabilities.shot_overhead
    assert batch.metadata["device_time_s"] == pytest.approx(3 * 2 * 20_000 * per_shot * 1e-6, rel=1e-3)
    assert batch.metadata["device"]["snapshot_hash"] == profile.snapshot_hash


def test_qutip_backend_with_noise_is_reproducible() -> None:
    model, profile, theta = _chain()
    recipe = dataclasses.replace(qa.load_recipe("rydberg-smooth"), duration=4.0)
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", ["Z" * 6], 300)
    options = {"noise": True, "seed": 5, "realisations": 2}
    first = make_backend("qutip", model, profile, recipe, **options).run(jobs)
    again = make_backend("qutip", model, profile, recipe, **options).run(jobs)
    for a, b in zip(first.results, again.results, strict=True):
        assert a.counts is not None and b.counts is not None
        np.testing.assert_array_equal(a.counts["Z" * 6].counts, b.counts["Z" * 6].counts)
        assert a.counts["Z" * 6].shots == 300


def test_registry_is_lazy_and_names_the_known_backends() -> None:
    with pytest.raises(
        ConfigError,
        match=r"backend 'hardware': unknown "
        r"\(known: exact, mps, qutip, pulser, fake-lab, bundle, pasqal-cloud, emu-mps\)",
    ):
        make_backend("hardware")
    assert set(BACKENDS) >= {"exact", "qutip"}
    code = "import sys; import qep_analog.backends.registry; print('qutip' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_fake_lab_gradients_show_what_calibration_buys() -> None:
    """The mis-calibrated fake lab (Ω 6 % strong, a 2π·0.15 MHz offset, C6 4 % weak, per-site gains)
    gives a gradient off the exact one of the intended model when programmed with the nominal
    profile (χ² ≈ 30 over 4 parameters at 4·10⁶ shots), and one within its error bars when programmed
    with the lab's true calibration (χ² ≈ 5)."""
    from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab

    model, _, theta = _chain()
    nominal = qa.read_profile("fresnel-like")
    recipe = dataclasses.replace(qa.load_recipe("rydberg-smooth"), duration=6.0)
    bases = ["Z" * 6, "X" * 6]
    exact = make_backend("exact", model, nominal)
    truth_jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", bases, None)
    truth = sample_gradients(exact.model, truth_jobs, exact.run(truth_jobs), BETA, "symmetric")[0].values
    lab = FakeRydbergLab.for_profile(nominal, n_sites=6, seed=1)
    true = lab.true_profile()
    calibrated = dataclasses.replace(nominal, calibration=true.calibration, noise=true.noise)
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", bases, 4_000_000)
    chi2 = {}
    for name, programmed in (("nominal", nominal), ("calibrated", calibrated)):
        backend = make_backend("fake-lab", model, programmed, recipe, lab=lab)
        batch = backend.run(jobs)
        readout = qa.ReadoutErrors.from_profile(programmed, 6)  # mitigated as the run believes
        g = sample_gradients(backend.model, jobs, batch, BETA, "symmetric", readout)[0]
        chi2[name] = float((((g.values - truth) / g.standard_errors) ** 2).sum())
        assert batch.metadata["device"]["snapshot_hash"] == programmed.snapshot_hash
    assert chi2["calibrated"] < 12.0 < 20.0 < chi2["nominal"]  # 4 degrees of freedom
    with pytest.raises(ConfigError, match="a lab returns counts"):
        make_backend("fake-lab", model, nominal, recipe, lab=lab).run(truth_jobs)


def _play(bundle_dir: Path, jobs: list[PhaseJob], lab: object, backend: object) -> None:
    """A lab's side: run each sequence of the manifest and drop its counts file."""
    from qep_analog.backends.bundle import COUNTS_SCHEMA, dense_to_bitstrings, file_stem, write_counts_file
    from qep_analog.backends.schedules import job_schedules

    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    schedules = job_schedules(backend.model, backend.profile, backend.recipe, jobs)  # type: ignore[attr-defined]
    for job in jobs:
        for basis in job.bases:
            assert (bundle_dir / manifest["files"][job.key][basis]).is_file()
            read = dataclasses.replace(schedules[job.key], readout=basis)
            dense = lab.run_schedules([read], job.shots)[0]  # type: ignore[attr-defined]
            path = bundle_dir / "counts" / f"{file_stem(job, basis)}.json"
            write_counts_file(path, job, basis, dense_to_bitstrings(dense, backend.model.n_qubits))  # type: ignore[attr-defined]
            assert json.loads(path.read_text())["schema"] == COUNTS_SCHEMA


def test_bundle_round_trip_and_its_errors(tmp_path: Path) -> None:
    from pulser import Sequence as PulserSequence

    from qep_analog.backends.bundle import BundlePending
    from qep_analog.calibration.fakes.rydberg_lab import FakeRydbergLab

    model, _, theta = _chain()
    profile = qa.read_profile("fresnel-like")
    recipe = qa.load_recipe("rydberg-smooth")
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", ["Z" * 6, "X" * 6], 500)
    folder = tmp_path / "step-0001"
    backend = make_backend("bundle", model, profile, recipe, directory=folder)
    with pytest.raises(BundlePending, match=r"6 sequences written; play them"):
        backend.run(jobs)
    sequence = PulserSequence.from_abstract_repr(
        (folder / "sequences" / "0-plus-ZZZZZZ.pulser.json").read_text()
    )
    assert sequence.get_duration() == 4000 and len(sequence.register.qubits) == 6
    assert sequence.is_measured()
    x_sequence = PulserSequence.from_abstract_repr(
        (folder / "sequences" / "0-plus-XXXXXX.pulser.json").read_text()
    )
    assert x_sequence.get_duration() == 4128  # the X file plays its π/2 rotation after the ramp
    rotations = json.loads((folder / "manifest.json").read_text())["readout_rotations"]
    assert sorted(rotations) == ["0/free", "0/minus", "0/plus"] and list(rotations["0/plus"]) == ["XXXXXX"]
    assert rotations["0/plus"]["XXXXXX"]["rotation"]["duration_us"] == 0.128
    assert rotations["0/plus"]["XXXXXX"]["max_abs_bias"] > 0
    with pytest.raises(BundlePending, match=r"counts of job '0/plus' in basis ZZZZZZ: no file"):
        backend.run(jobs)
    _play(folder, jobs, FakeRydbergLab.for_profile(profile, n_sites=6, seed=7), backend)
    batch = backend.run(jobs)
    # the same lab, seed and schedules run in process give the same counts
    direct = make_backend(
        "fake-lab", model, profile, recipe, lab=FakeRydbergLab.for_profile(profile, n_sites=6, seed=7)
    )
    for a, b in zip(batch.results, direct.run(jobs).results, strict=True):
        for basis in ("Z" * 6, "X" * 6):
            assert a.counts is not None and b.counts is not None
            np.testing.assert_array_equal(a.counts[basis].outcomes, b.counts[basis].outcomes)
            np.testing.assert_array_equal(a.counts[basis].counts, b.counts[basis].counts)
    assert batch.metadata["device"]["snapshot_hash"] == profile.snapshot_hash
    overhead = profile.capabilities.shot_overhead  # µs per shot beyond the sequence
    assert batch.metadata["device_time_s"] == pytest.approx(3 * 2 * 500 * (4.0 + overhead) * 1e-6)

    counts_file = folder / "counts" / "0-minus-XXXXXX.json"
    good = counts_file.read_text()
    document = json.loads(good)
    cases = [
        ({**document, "counts": {"01": 500}}, "bitstring '01' is not 6 characters"),
        ({**document, "counts": {"000000": 499}}, "499 shots, the manifest asks for 500"),
        ({**document, "job": "0/plus"}, "says job '0/plus'"),
    ]
    for bad, message in cases:
        counts_file.write_text(json.dumps(bad))
        with pytest.raises(MeasurementError, match=message):
            backend.run(jobs)
    counts_file.write_text(good)
    (folder / "counts" / "9-plus-ZZZZZZ.json").write_text(good)
    with pytest.raises(MeasurementError, match=r"counts file 9-plus-ZZZZZZ\.json is for no job"):
        backend.run(jobs)
    (folder / "counts" / "9-plus-ZZZZZZ.json").unlink()
    other = phase_jobs(np.zeros((1, 0)), theta * 1.1, [[1.0]], BETA, "symmetric", ["Z" * 6, "X" * 6], 500)
    with pytest.raises(MeasurementError, match="holds other jobs than this step's"):
        backend.run(other)
    assert backend.run(jobs).results  # nothing in the bundle was lost


def test_mps_backend_agrees_with_exact_and_refuses_counts() -> None:
    model, profile, theta = _chain()
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", [], None)
    exact = make_backend("exact", model, profile)
    mps = make_backend("mps", model, profile)
    g_exact = sample_gradients(exact.model, jobs, exact.run(jobs), BETA, "symmetric")[0]
    g_mps = sample_gradients(mps.model, jobs, mps.run(jobs), BETA, "symmetric")[0]
    np.testing.assert_allclose(g_mps.values, g_exact.values, rtol=0, atol=1e-5)
    assert g_mps.outputs is not None and g_exact.outputs is not None
    np.testing.assert_allclose(g_mps.outputs, g_exact.outputs, rtol=0, atol=1e-6)
    counted = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", ["Z" * 6], 100)
    with pytest.raises(ConfigError, match=r"backend mps: job '0/plus' asks for counts"):
        mps.run(counted)


def test_pulser_backend_agrees_with_qutip_on_the_same_schedules() -> None:
    model, _, theta = _chain()
    profile = qa.read_profile("fresnel-like")
    recipe = qa.load_recipe("rydberg-smooth")
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", [], None)
    ours = make_backend("qutip", model, profile, recipe)
    pulser = make_backend("pulser", model, profile, recipe)
    g_ours = sample_gradients(ours.model, jobs, ours.run(jobs), BETA, "symmetric")[0]
    g_pulser = sample_gradients(pulser.model, jobs, pulser.run(jobs), BETA, "symmetric")[0]
    # Pulser samples the waveforms per ns, ours interpolates them: agreement to ~1e-3 of the gradient
    assert np.abs(g_pulser.values - g_ours.values).max() < 2e-3 * np.abs(g_ours.values).max() + 1e-4
    counted = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", ["Z" * 6], 50)
    batch = pulser.run(counted)
    assert all(r.counts is not None and r.counts["Z" * 6].shots == 50 for r in batch.results)
    assert batch.metadata["backend"] == "pulser"


def test_the_ramp_bias_estimate_is_an_option_of_every_backend_that_plays_ramps() -> None:
    """``bias_budget: false`` switches the estimate off on qutip, pulser and fake-lab (on by default);
    a backend that plays no ramp refuses the option in one line."""
    from qep_analog.backends.configure import backend_for_run

    model, _, theta = _chain()
    profile = qa.read_profile("fresnel-like")
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "symmetric", ["Z" * 6], 10)
    free = [job for job in jobs if job.phase == "free"]
    for name in ("qutip", "pulser", "fake-lab"):
        for on in (True, False):
            backend = backend_for_run(
                name, model, profile, run_dir=".", seed=0, recipe="rydberg-smooth",
                options={} if on else {"bias_budget": False},
            )  # fmt: skip
            bias = backend.preparation_bias(free, BETA, np.ones((1, 1)))
            assert (bias is not None) == on, (name, on)
            if on:
                assert bias.shape == (1, len(model.parameter_names)) and np.all(np.isfinite(bias))
    with pytest.raises(
        ConfigError, match=r"^backend exact: takes no option 'bias_budget' \(its options: seed\)$"
    ):
        backend_for_run("exact", model, profile, run_dir=".", seed=0, options={"bias_budget": False})


def test_an_ion_bundle_holds_ion_schedules(tmp_path: Path) -> None:
    from qep_analog.backends.bundle import BundlePending
    from qep_analog.sequences.ion_export import read_ion_json

    model, profile, theta = _ions()
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], 0.005, "symmetric", ["ZZZZ"], 200)
    backend = make_backend("bundle", model, profile, qa.load_recipe("ion-exponential"), directory=tmp_path)
    with pytest.raises(BundlePending, match="3 sequences written"):
        backend.run(jobs)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["metadata"]["device"]["name"] == "yb171-chain"
    document = read_ion_json(tmp_path / manifest["files"]["0/minus"]["ZZZZ"])
    assert document["n_ions"] == 4 and document["readout_basis"] == "ZZZZ"


@pytest.mark.parametrize(
    ("value", "sources", "mitigated"),
    [
        (True, sorted(qa.NOISE_SOURCES), True),
        (["detuning"], ["detuning"], False),
        ("readout,amplitude_jitter", ["amplitude_jitter", "readout"], True),
        (False, [], False),
    ],
)
def test_qutip_backend_noise_sources_from_a_backend_section(
    value: object, sources: list[str], mitigated: bool
) -> None:
    """``backend.noise``: true for every source, a list or a comma-separated text for some; the
    readout mitigation only when ``readout`` is on; the batch metadata names the sources."""
    model, profile, theta = _chain()
    backend = qa.backend_for_run(
        "qutip", model, profile, run_dir=".", seed=0, recipe="rydberg-smooth", options={"noise": value}
    )
    assert sorted(backend.noise) == sources and (backend.mitigation is not None) == mitigated
    jobs = phase_jobs(np.zeros((1, 0)), theta, [[1.0]], BETA, "one-sided", ["Z" * 6], 10)[:1]
    if not backend.noise:
        assert backend.run(jobs).metadata["noise"] == []


def test_bad_backend_noise_is_one_line() -> None:
    model, profile, _ = _chain()
    for value, fragment in (
        ("doppler", "names an unknown source 'doppler' (known: detuning, dephasing, amplitude_jitter"),
        (1, "noise = 1 is not true, false or source names"),
    ):
        with pytest.raises(ConfigError) as caught:
            qa.backend_for_run(
                "qutip",
                model,
                profile,
                run_dir=".",
                seed=0,
                recipe="rydberg-smooth",
                options={"noise": value},
            )
        assert str(caught.value).startswith("backend qutip: noise = ") and fragment in str(caught.value)
        assert "\n" not in str(caught.value)
