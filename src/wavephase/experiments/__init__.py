"""Experiment drivers: data -> fit -> metrics -> figures -> metrics.json, one per application."""

from wavephase.experiments.outputs import prepare_output_dir, run_info, write_metrics

__all__ = ["prepare_output_dir", "run_info", "write_metrics"]
