"""The report's sections: settings every driver accepts, documented times, one folder each."""

import inspect
import math

import pytest

from wavephase.experiments.classification import run_classification
from wavephase.experiments.generation import run_generation
from wavephase.experiments.qm9 import run_qm9
from wavephase.experiments.scattering_demo import run_scattering_demo
from wavephase.experiments.synthesis import run_synthesis
from wavephase.report.sections import SECTIONS


def _calls(key, settings):
    """The driver calls a section makes with its settings, as (function, positional, keyword) triples."""
    if key == "scattering":
        return [(run_scattering_demo, ("out",), settings)]
    if key in ("ising", "turbulence"):
        return [(run_synthesis, (key, "out"), {**settings, "progress": True})]
    if key == "classification":
        return [(run_classification, (dataset, model, "out"), {**settings["common"], **params, "progress": True})
                for dataset, models in settings["runs"].items() for model, params in models.items()]
    if key == "qm9":
        return [(run_qm9, ("out",), {**settings, "progress": True})]
    settings = dict(settings)
    return [(run_generation, (settings.pop("dataset"), "out"), {**settings, "progress": False})]


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
@pytest.mark.parametrize("section", SECTIONS, ids=[s.key for s in SECTIONS])
def test_settings_are_arguments_of_the_drivers(section, quick):
    # The drivers' signatures may change (one CLI grammar): a renamed argument fails here, not in `make demo`.
    for fn, args, kwargs in _calls(section.key, section.settings(quick)):
        inspect.signature(fn).bind(*args, **kwargs)


def test_every_section_documents_its_times_and_the_quick_report_fits_in_ten_minutes():
    assert len({s.key for s in SECTIONS}) == len(SECTIONS)
    for s in SECTIONS:
        quick, full = s.expected_seconds
        assert math.isfinite(quick) and math.isfinite(full) and 0 < quick < full, s.key
    # the documented quick times leave a margin for a busier machine
    assert sum(s.expected_seconds[0] for s in SECTIONS) <= 0.8 * 600


def test_settings_are_copies():
    section = SECTIONS[0]
    section.settings(True)["size"] = -1
    assert section.settings(True)["size"] > 0
