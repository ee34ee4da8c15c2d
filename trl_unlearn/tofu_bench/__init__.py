"""``trl-unlearn tofu-bench``: the TOFU protocol end to end (fine-tune, unlearn, evaluate, report).

>>> from trl_unlearn.tofu_bench import TofuBenchConfig, run          # doctest: +SKIP
>>> results = run(TofuBenchConfig(output_dir="tofu-bench", data_dir="../shared/data/tofu"))  # doctest: +SKIP
>>> results["rows"]["npo"]["forget_quality"]                          # doctest: +SKIP
"""

from .config import TofuBenchConfig
from .pipeline import main, run
from .report import BenchValidityError

__all__ = ["BenchValidityError", "TofuBenchConfig", "main", "run"]
