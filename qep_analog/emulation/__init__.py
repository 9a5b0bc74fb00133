"""Emulation of schedules: our QuTiP emulator, Pulser's emulator as a backend, adiabaticity checks."""
