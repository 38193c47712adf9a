"""The public API the README names has numpy docstrings, and their examples run."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

# name -> the numpy sections its docstring must have
DOCUMENTED = {
    "gelora.measure.intrinsic_dimension.twonn": ("Parameters", "Returns", "Raises", "Examples"),
    "gelora.measure.intrinsic_dimension.gride": ("Parameters", "Returns", "Raises", "Examples"),
    "gelora.data.load_task": ("Parameters", "Returns", "Raises"),
    "gelora.data.text_pairs": ("Parameters", "Returns", "Raises", "Examples"),
    "gelora.train.runner.train": ("Parameters", "Returns", "Raises"),
    "gelora.train.config.TrainConfig": ("Attributes",),
    "gelora.options.ProfileOptions": ("Attributes",),
    "gelora.options.PlanOptions": ("Attributes",),
    "gelora.geolora.merge": ("Parameters", "Returns", "Examples"),
    "gelora.geolora.ranks": ("Parameters", "Returns"),
    "gelora.geolora.geolora_layers": ("Parameters", "Returns"),
    "gelora.geolora.trainable_parameter_count": ("Parameters", "Returns"),
    "gelora.geolora.save_geolora": ("Parameters", "Returns", "Raises"),
    "gelora.geolora.load_geolora": ("Parameters", "Returns", "Raises"),
    "gelora.geolora.export_to_peft": ("Parameters", "Returns", "Raises"),
    "gelora.geolora.GeoLoRACallback": ("Parameters", "Attributes"),
    "gelora.geolora.GeoLoRAIntegrator": ("Parameters", "Raises"),
    "gelora.geolora.GeoLoRAIntegrator.step": ("Raises",),
    "gelora.geolora.GeoLoRAIntegrator.after_optimizer_step": ("Raises",),
}
WITH_EXAMPLES = ("gelora.measure.intrinsic_dimension", "gelora.data", "gelora.geolora.model")


@pytest.mark.parametrize("name", DOCUMENTED)
def test_public_name_has_numpy_sections(name):
    doc = inspect.getdoc(pkgutil.resolve_name(name)) or ""
    missing = [s for s in DOCUMENTED[name] if f"\n{s}\n{'-' * len(s)}\n" not in doc]
    assert not missing, f"{name} lacks the section(s) {missing}"


@pytest.mark.parametrize("module", WITH_EXAMPLES)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
