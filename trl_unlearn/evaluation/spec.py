"""One declarative spec per benchmark: :data:`TOFU`, :data:`MUSE`, :data:`WMDP` (in :data:`BENCHMARKS`).

A :class:`BenchmarkSpec` names a benchmark's metrics (open-unlearning's log keys), the groups
accepted in ``metrics=``, what each metric is computed from, their display names, the Hub
datasets, the paper and the log file names. The evaluators, the summaries
(:mod:`~trl_unlearn.evaluation.tofu`, :mod:`~trl_unlearn.evaluation.muse`), the log checks of
:mod:`~trl_unlearn.evaluation.results` and the model cards all read it; nothing else lists
metric names.

Adding a benchmark means a spec here, its summary (pure functions from per-example values to
aggregates) and its evaluator (the per-example values); the model cards, the Hub results and the
training callback need nothing new. A benchmark whose metrics come from several Hub datasets
(WMDP: ``cais/wmdp`` configs and ``cais/mmlu``) says which metric is from which in
:attr:`BenchmarkSpec.metric_datasets`.

Pure data: importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "BENCHMARKS",
    "MUSE",
    "TOFU",
    "WMDP",
    "BenchmarkSpec",
    "benchmark_of_dataset",
    "benchmark_spec",
    "canonical_dataset_id",
    "dataset_id_for",
    "metric_display_name",
    "normalize_benchmark",
]

MEMORIZATION_METRICS = ("exact_memorization", "extraction_strength")
MIA_METRICS = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_gradnorm", "mia_reference")

_SHARED_NAMES = {
    "exact_memorization": "Exact memorization",
    "extraction_strength": "Extraction strength",
    "mia_loss": "MIA AUC (loss)",
    "mia_zlib": "MIA AUC (zlib)",
    "mia_min_k": "MIA AUC (Min-K%)",
    "mia_min_k_plus_plus": "MIA AUC (Min-K%++)",
    "mia_gradnorm": "MIA AUC (gradient norm)",
    "mia_reference": "MIA AUC (reference model)",
    "privleak": "PrivLeak",
}


@dataclass(frozen=True)
class BenchmarkSpec:
    """What a benchmark is, as data.

    Attributes
    ----------
    name : str
        ``"TOFU"``, ``"MUSE"``, ``"WMDP"``.
    dataset_ids : tuple of str
        Its Hub datasets (the first is the default when there is one).
    title, paper_id, citation : str
        The paper (arXiv id) and its BibTeX.
    eval_file, summary_file : str
        open-unlearning's per-example log and summary file names.
    reference_name : str
        The evaluators' name of the reference (retain / retrain model) argument.
    metrics : tuple of str
        Every metric key an evaluation can produce, in OU's names.
    groups : mapping of str to tuple of str
        Group names accepted in ``metrics=``.
    dependencies : mapping of str to tuple of str
        The metrics each metric is computed from.
    display_names : mapping of str to str
        Readable names (model cards, ``model-index``).
    exclusive_prefixes : tuple of str
        Key prefixes only this benchmark's logs have (to refuse a log of another benchmark).
    metric_datasets : mapping of str to (str, str or None)
        The Hub dataset and config of the metrics that each come from their own dataset
        (``"wmdp_bio"`` -> ``("cais/wmdp", "wmdp-bio")``); empty when the whole evaluation is one
        dataset.
    """

    name: str
    dataset_ids: tuple[str, ...]
    title: str
    paper_id: str
    citation: str
    eval_file: str
    summary_file: str
    reference_name: str
    metrics: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]]
    dependencies: Mapping[str, tuple[str, ...]]
    display_names: Mapping[str, str] = field(default_factory=dict)
    exclusive_prefixes: tuple[str, ...] = ()
    metric_datasets: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)

    def expand_metrics(self, requested: Iterable[str]) -> set[str]:
        """Resolve metric and group names and add the metrics each one is computed from.

        A single string is one name (``"forget"``, not its letters).

        Raises
        ------
        ValueError
            On an unknown name (the message lists the valid ones), or no name at all.
        """
        requested = [requested] if isinstance(requested, str) else list(requested)
        if not requested:
            raise ValueError(
                f"`metrics` is empty, so the {self.name} evaluation would compute nothing: pass metric or group "
                f"names (e.g. {sorted(self.groups)[:3]}), or `metrics=None` for everything."
            )
        out: set[str] = set()
        stack: list[str] = []
        for name in requested:
            if name in self.groups:
                stack.extend(self.groups[name])
            elif name in self.metrics:
                stack.append(name)
            else:
                raise ValueError(
                    f"unknown {self.name} metric {name!r}; use metric names {list(self.metrics)} or groups {sorted(self.groups)}"
                )
        while stack:
            name = stack.pop()
            if name not in out:
                out.add(name)
                stack.extend(self.dependencies.get(name, ()))
        return out


# --------------------------------------------------------------------------------------------
# TOFU
# --------------------------------------------------------------------------------------------
_TOFU_SPLITS = {
    "forget": ("forget_Q_A_Prob", "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob", "forget_Q_A_ROUGE", "forget_truth_ratio"),
    "retain": ("retain_Q_A_Prob", "retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio"),
    "ra": ("ra_Q_A_Prob", "ra_Q_A_PERT_Prob", "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE", "ra_Truth_Ratio"),
    "wf": ("wf_Q_A_Prob", "wf_Q_A_PERT_Prob", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio"),
}
#: The nine aggregates whose harmonic mean is TOFU's model utility, under their OU log names.
TOFU_MODEL_UTILITY_COMPONENTS = (
    "retain_Q_A_Prob",
    "retain_Q_A_ROUGE",
    "retain_Truth_Ratio",
    "ra_Q_A_Prob_normalised",
    "ra_Q_A_ROUGE",
    "ra_Truth_Ratio",
    "wf_Q_A_Prob_normalised",
    "wf_Q_A_ROUGE",
    "wf_Truth_Ratio",
)

TOFU = BenchmarkSpec(
    name="TOFU",
    dataset_ids=("locuslab/TOFU",),
    title="TOFU: A Task of Fictitious Unlearning for LLMs",
    paper_id="2401.06121",
    citation="""@article{maini2024tofu,
  title   = {{TOFU}: A Task of Fictitious Unlearning for {LLMs}},
  author  = {Maini, Pratyush and Feng, Zhili and Schwarzschild, Avi and Lipton, Zachary C. and Kolter, J. Zico},
  journal = {arXiv preprint arXiv:2401.06121},
  year    = {2024}
}""",
    eval_file="TOFU_EVAL.json",
    summary_file="TOFU_SUMMARY.json",
    reference_name="retain_reference",
    metrics=(*(m for ms in _TOFU_SPLITS.values() for m in ms), *MEMORIZATION_METRICS, *MIA_METRICS,
             "forget_quality", "model_utility", "privleak"),  # fmt: skip
    groups={
        "forget": (*_TOFU_SPLITS["forget"], "forget_quality"),
        "retain": _TOFU_SPLITS["retain"],
        "ra": _TOFU_SPLITS["ra"],
        "real_authors": _TOFU_SPLITS["ra"],
        "wf": _TOFU_SPLITS["wf"],
        "world_facts": _TOFU_SPLITS["wf"],
        "memorization": MEMORIZATION_METRICS,
        # mia_reference needs `reference_model=`: asked for by name, or by default when one is given
        "mia": (*(m for m in MIA_METRICS if m != "mia_reference"), "privleak"),
    },
    dependencies={
        "forget_truth_ratio": ("forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob"),
        "forget_quality": ("forget_truth_ratio",),
        "retain_Truth_Ratio": ("retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob"),
        "ra_Q_A_Prob_normalised": ("ra_Q_A_Prob", "ra_Q_A_PERT_Prob"),
        "ra_Truth_Ratio": ("ra_Q_A_Prob", "ra_Q_A_PERT_Prob"),
        "wf_Q_A_Prob_normalised": ("wf_Q_A_Prob", "wf_Q_A_PERT_Prob"),
        "wf_Truth_Ratio": ("wf_Q_A_Prob", "wf_Q_A_PERT_Prob"),
        "model_utility": TOFU_MODEL_UTILITY_COMPONENTS,
        "privleak": ("mia_min_k",),
    },
    display_names={
        "forget_quality": "Forget quality",
        "model_utility": "Model utility",
        "forget_truth_ratio": "Forget truth ratio",
        "forget_Q_A_Prob": "Forget answer probability",
        "forget_Q_A_ROUGE": "Forget ROUGE-L recall",
        "forget_Q_A_PARA_Prob": "Forget paraphrased-answer probability",
        "forget_Q_A_PERT_Prob": "Forget perturbed-answer probability",
        "retain_Q_A_Prob": "Retain answer probability",
        "retain_Q_A_ROUGE": "Retain ROUGE-L recall",
        "retain_Truth_Ratio": "Retain truth ratio",
        "ra_Q_A_Prob_normalised": "Real authors probability",
        "ra_Q_A_ROUGE": "Real authors ROUGE-L recall",
        "ra_Truth_Ratio": "Real authors truth ratio",
        "wf_Q_A_Prob_normalised": "World facts probability",
        "wf_Q_A_ROUGE": "World facts ROUGE-L recall",
        "wf_Truth_Ratio": "World facts truth ratio",
        **_SHARED_NAMES,
    },
    exclusive_prefixes=("forget_Q_A_", "retain_Q_A_", "ra_Q_A_", "wf_Q_A_", "forget_truth_ratio", "retain_Truth_Ratio",
                        "ra_Truth_Ratio", "wf_Truth_Ratio", "forget_quality", "model_utility"),  # fmt: skip
)

# --------------------------------------------------------------------------------------------
# MUSE
# --------------------------------------------------------------------------------------------
_MUSE_ROUGE = ("forget_verbmem_ROUGE", "forget_knowmem_ROUGE", "retain_knowmem_ROUGE")

MUSE = BenchmarkSpec(
    name="MUSE",
    dataset_ids=("muse-bench/MUSE-News", "muse-bench/MUSE-Books"),
    title="MUSE: Machine Unlearning Six-Way Evaluation for Language Models",
    paper_id="2407.06460",
    citation="""@article{shi2024muse,
  title   = {{MUSE}: Machine Unlearning Six-Way Evaluation for Language Models},
  author  = {Shi, Weijia and Lee, Jaechan and Huang, Yangsibo and Malladi, Sadhika and Zhao, Jieyu and
             Holtzman, Ari and Liu, Daogao and Zettlemoyer, Luke and Smith, Noah A. and Zhang, Chiyuan},
  journal = {arXiv preprint arXiv:2407.06460},
  year    = {2024}
}""",
    eval_file="MUSE_EVAL.json",
    summary_file="MUSE_SUMMARY.json",
    reference_name="retrain_reference",
    metrics=(*_MUSE_ROUGE, *MEMORIZATION_METRICS, *MIA_METRICS, "privleak"),
    groups={
        "verbmem": ("forget_verbmem_ROUGE",),
        "knowmem": ("forget_knowmem_ROUGE", "retain_knowmem_ROUGE"),
        "rouge": _MUSE_ROUGE,
        "memorization": MEMORIZATION_METRICS,
        "mia": MIA_METRICS,
    },
    dependencies={"privleak": ("mia_min_k",)},
    display_names={
        "forget_verbmem_ROUGE": "Forget VerbMem (ROUGE-L F1)",
        "forget_knowmem_ROUGE": "Forget KnowMem (ROUGE-L F1)",
        "retain_knowmem_ROUGE": "Retain KnowMem (ROUGE-L F1)",
        **_SHARED_NAMES,
    },
    exclusive_prefixes=_MUSE_ROUGE,
)

# --------------------------------------------------------------------------------------------
# WMDP (with MMLU)
# --------------------------------------------------------------------------------------------
#: WMDP's subsets, by the short names of ``WMDPEvaluator(subsets=...)``.
WMDP_SUBSETS = ("bio", "chem", "cyber")

WMDP = BenchmarkSpec(
    name="WMDP",
    dataset_ids=("cais/wmdp", "cais/mmlu"),
    title="The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning",
    paper_id="2403.03218",
    citation=(
        "@inproceedings{li2024wmdp,\n"
        "    title     = {{The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning}},\n"
        "    author    = {"
        "Nathaniel Li and Alexander Pan and Anjali Gopal and Summer Yue and "
        "Daniel Berrios and Alice Gatti and Justin D. Li and Ann-Kathrin Dombrowski and "
        "Shashwat Goel and Long Phan and Gabriel Mukobi and Nathan Helm-Burger and "
        "Rassin Lababidi and Lennart Justen and Andrew B. Liu and Michael Chen and "
        "Isabelle Barrass and Oliver Zhang and Xiaoyuan Zhu and Rishub Tamirisa and "
        "Bhrugu Bharathi and Adam Khoja and Zhenqi Zhao and Ariel Herbert-Voss and "
        "Cort B. Breuer and Samuel Marks and Oam Patel and Andy Zou and "
        "Mantas Mazeika and Zifan Wang and Palash Oswal and Weiran Lin and "
        "Adam A. Hunt and Justin Tienken-Harder and Kevin Y. Shih and Kemper Talley and "
        "John Guan and Russell Kaplan and Ian Steneker and David Campbell and "
        "Brad Jokubaitis and Alex Levinson and Jean Wang and William Qian and "
        "Kallol Krishna Karmakar and Steven Basart and Stephen Fitz and Mindy Levine and "
        "Ponnurangam Kumaraguru and Uday Tupakula and Vijay Varadharajan and Ruoyu Wang and "
        "Yan Shoshitaishvili and Jimmy Ba and Kevin M. Esvelt and Alexandr Wang and "
        "Dan Hendrycks},\n"
        "    booktitle = {International Conference on Machine Learning},\n"
        "    year      = {2024}\n"
        "}"
    ),
    eval_file="WMDP_EVAL.json",
    summary_file="WMDP_SUMMARY.json",
    reference_name="reference",
    metrics=(*(f"wmdp_{s}" for s in WMDP_SUBSETS), "mmlu"),
    groups={"wmdp": tuple(f"wmdp_{s}" for s in WMDP_SUBSETS)},
    dependencies={},
    display_names={
        "wmdp_bio": "WMDP-Bio accuracy",
        "wmdp_chem": "WMDP-Chem accuracy",
        "wmdp_cyber": "WMDP-Cyber accuracy",
        "mmlu": "MMLU accuracy",
    },
    exclusive_prefixes=("wmdp_", "mmlu"),
    metric_datasets={
        **{f"wmdp_{s}": ("cais/wmdp", f"wmdp-{s}") for s in WMDP_SUBSETS},
        "mmlu": ("cais/mmlu", "all"),
    },
)

#: Every benchmark trl-unlearn knows, by name.
BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (TOFU, MUSE, WMDP)}


def benchmark_spec(name: str) -> BenchmarkSpec | None:
    """The spec of a benchmark name (case-insensitive), or ``None`` for one trl-unlearn does not know."""
    return BENCHMARKS.get(str(name).strip().upper())


def metric_display_name(key: str) -> str:
    """Readable name of a summary key (``"forget_quality"`` -> ``"Forget quality"``), from the specs;
    an unknown key is spelled out (``"some_new_metric"`` -> ``"Some new metric"``)."""
    for spec in BENCHMARKS.values():
        if key in spec.display_names:
            return spec.display_names[key]
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def normalize_benchmark(benchmark: str) -> str:
    """The spec's name of a known benchmark (case-insensitive), else ``benchmark`` stripped."""
    if not isinstance(benchmark, str) or not benchmark.strip():
        raise ValueError(f"`benchmark` must be a non-empty string such as 'TOFU' or 'MUSE', got {benchmark!r}.")
    spec = benchmark_spec(benchmark)
    return spec.name if spec is not None else benchmark.strip()


def dataset_id_for(benchmark: str, dataset_id: str | None = None) -> str:
    """The Hub dataset id of a benchmark, checking an explicit one.

    Parameters
    ----------
    benchmark : str
        ``"TOFU"``, ``"MUSE"`` (case-insensitive) or the name of another benchmark.
    dataset_id : str, optional
        Explicit dataset id. Required for MUSE (``muse-bench/MUSE-News`` or ``muse-bench/MUSE-Books``)
        and for benchmarks trl-unlearn does not know.

    Returns
    -------
    str
        ``dataset_id`` if given, otherwise the benchmark's only dataset (``locuslab/TOFU`` for TOFU).

    Raises
    ------
    ValueError
        If the dataset cannot be inferred.
    """
    if dataset_id:
        return dataset_id
    spec = benchmark_spec(benchmark)
    if spec is None:
        raise ValueError(f"Unknown benchmark {benchmark!r}: pass `dataset_id` (the Hub dataset it was evaluated on).")
    if len(spec.dataset_ids) != 1:
        raise ValueError(
            f"{benchmark} has several datasets ({', '.join(spec.dataset_ids)}): pass `dataset_id` to say which "
            "one was evaluated."
        )
    return spec.dataset_ids[0]


def benchmark_of_dataset(dataset_id: str | None) -> str | None:
    """The benchmark a Hub dataset id belongs to (its datasets, or a repository named after it), or ``None``."""
    if not dataset_id:
        return None
    for name, spec in BENCHMARKS.items():
        if dataset_id in spec.dataset_ids or dataset_id.split("/")[-1].upper().startswith(name):
            return name
    return None


def canonical_dataset_id(name: str | None) -> str | None:
    """Hub id of a benchmark dataset from the name ``datasets`` keeps, e.g. ``"tofu"`` -> ``"locuslab/TOFU"``.

    ``datasets`` stores a Hub dataset's name without its namespace and in snake case
    (``Dataset.info.dataset_name == "tofu"`` for ``locuslab/TOFU``); the benchmark datasets are
    mapped back to their Hub ids. Other names are returned unchanged.

    Parameters
    ----------
    name : str or None

    Returns
    -------
    str or None
    """
    if not isinstance(name, str):
        return name
    key = name.split("/")[-1].lower().replace("_", "-")
    for spec in BENCHMARKS.values():
        for dataset_id in spec.dataset_ids:
            if key == dataset_id.split("/")[-1].lower() and (
                "/" not in name or name.split("/")[0].lower() == dataset_id.split("/")[0].lower()
            ):
                return dataset_id
    return name
