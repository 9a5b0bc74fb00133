#!/usr/bin/env bash
# The runs of examples/results/ion_sensor/, from the repository's root (QEP_ANALOG_HISTORY points at a
# fresh folder: the nominal runs ignore it, the calibrated one reads the runcard's records).
set -euo pipefail
RUNS=${RUNS:-runs}
export QEP_ANALOG_HISTORY=$RUNS/ion_history
# 1. the sensor trained on exact states (the exact backend), three seeds
for s in 0 1 2; do
  qep-analog train examples/ion_sensor.yaml --seed $s --output $RUNS/ion_exact_$s --nominal --quiet
done
python benchmarks/summarize_runs.py $RUNS/ion_exact_{0,1,2} --into examples/results/ion_sensor/exact \
  --command "qep-analog train examples/ion_sensor.yaml --seed S --nominal"
# 2. seed 0 on a mis-calibrated fake yb171-like chain, programmed with the profile's file values:
#    step 0 is the exact-state sensor measured on the device; then it is fine-tuned there
qep-analog train examples/ion_sensor_device.yaml --init $RUNS/ion_exact_0/result.json \
  --output $RUNS/ion_fakelab_nominal --nominal --quiet
# 3. the daily runcard for the 8-ion chain on the same fake device, then the same fine-tuning with
#    the calibration in force
qep-analog calibrate examples/results/ion_sensor/ion-daily-8.yaml --device yb171-chain --backend fake-lab \
  --sites 8 --seed 0 --out $RUNS/ion_calibration --history $QEP_ANALOG_HISTORY
qep-analog train examples/ion_sensor_device.yaml --init $RUNS/ion_exact_0/result.json \
  --output $RUNS/ion_fakelab_calibrated --quiet
for run in ion_fakelab_nominal ion_fakelab_calibrated; do
  python benchmarks/summarize_runs.py $RUNS/$run --into examples/results/ion_sensor/$run --command "see run.sh"
done
# 4. our emulator with the profile's noise through the 2.4 ms ramp: the sensor measured there (step 0
#    of a one-step run), and the fine-tuning (stopped at step 104 with the earlier sensor: see README)
qep-analog train examples/ion_sensor_device.yaml --init $RUNS/ion_exact_0/result.json \
  --backend qutip --noise --steps 1 --output $RUNS/ion_qutip_eval0 --nominal --quiet
qep-analog train examples/ion_sensor_device.yaml --init $RUNS/ion_exact_0/result.json \
  --backend qutip --noise --output $RUNS/ion_qutip_noise --nominal --quiet
# 5. the same fine-tuning with a nudge wide enough to reach across the nominal device's field offset
#    (β = 0.02 rad/µs, rate 0.5): on the device programmed with the file's values, then calibrated
qep-analog train examples/results/ion_sensor/ion_sensor_device_large_beta.yaml --init $RUNS/ion_exact_0/result.json \
  --output $RUNS/ion_fakelab_nominal_large_beta --nominal --quiet
qep-analog train examples/results/ion_sensor/ion_sensor_device_large_beta.yaml --init $RUNS/ion_exact_0/result.json \
  --output $RUNS/ion_fakelab_calibrated_large_beta --quiet
for run in ion_fakelab_nominal_large_beta ion_fakelab_calibrated_large_beta; do
  python benchmarks/summarize_runs.py $RUNS/$run --into examples/results/ion_sensor/$run --command "see run.sh (step 5)"
done
