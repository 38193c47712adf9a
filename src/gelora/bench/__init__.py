"""``gelora bench``: GeLoRA against LoRA, AdaLoRA, EVA and full fine-tuning at matched parameter budgets."""

from gelora.bench.methods import MethodSpec, parse_method, parse_methods
from gelora.bench.run import Run, expand, run_bench
from gelora.bench.settings import BenchSettings

__all__ = ["BenchSettings", "MethodSpec", "Run", "expand", "parse_method", "parse_methods", "run_bench"]
