"""Adiabatic pulse sequences: schedules, recipes, QEP phases, export to hardware formats."""
