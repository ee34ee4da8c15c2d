"""Papers (title, arXiv id, BibTeX) of the methods added after the first five, for model cards."""

from ..evaluation.spec import WMDP as _WMDP

TOFU = {
    "title": "TOFU: A Task of Fictitious Unlearning for LLMs",
    "id": "2401.06121",
    "citation": (
        "@inproceedings{maini2024tofu,\n"
        "    title     = {{TOFU: A Task of Fictitious Unlearning for LLMs}},\n"
        "    author    = {Pratyush Maini and Zhili Feng and Avi Schwarzschild and Zachary C. Lipton and J. Zico Kolter},\n"
        "    booktitle = {First Conference on Language Modeling},\n"
        "    year      = {2024}\n"
        "}"
    ),
}
ALTPO = {
    "title": "Alternate Preference Optimization for Unlearning Factual Knowledge in Large Language Models",
    "id": "2409.13474",
    "citation": (
        "@article{mekala2024alternate,\n"
        "    title   = {{Alternate Preference Optimization for Unlearning Factual Knowledge in Large Language Models}},\n"
        "    author  = {Anmol Mekala and Vineeth Dorna and Shreya Dubey and Abhishek Lalwani and David Koleczek and "
        "Mukund Rungta and Sadid Hasan and Elita Lobo},\n"
        "    journal = {arXiv preprint arXiv:2409.13474},\n"
        "    year    = {2024}\n"
        "}"
    ),
}
UNDIAL = {
    "title": "UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in Large Language Models",
    "id": "2402.10052",
    "citation": (
        "@inproceedings{dong2025undial,\n"
        "    title     = {{UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in Large Language Models}},\n"
        "    author    = {Yijiang River Dong and Hongzhou Lin and Mikhail Belkin and Ram{\\'o}n Huerta and Ivan Vuli{\\'c}},\n"
        "    booktitle = {Proceedings of NAACL},\n"
        "    year      = {2025}\n"
        "}"
    ),
}
WGA = {
    "title": "Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond",
    "id": "2502.19301",
    "citation": (
        "@inproceedings{wang2025rethinking,\n"
        "    title     = {{Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond}},\n"
        "    author    = {Qizhou Wang and Jin Peng Zhou and Zhanke Zhou and Saebyeol Shin and Bo Han and Kilian Q. Weinberger},\n"
        "    booktitle = {International Conference on Learning Representations},\n"
        "    year      = {2025}\n"
        "}"
    ),
}
SATIMP = {
    "title": "Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning",
    "id": "2505.11953",
    "citation": (
        "@inproceedings{yang2025exploring,\n"
        "    title     = {{Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning}},\n"
        "    author    = {Puning Yang and Qizhou Wang and Zhuo Huang and Tongliang Liu and Chengqi Zhang and Bo Han},\n"
        "    booktitle = {International Conference on Machine Learning},\n"
        "    year      = {2025}\n"
        "}"
    ),
}
CEU = {
    "title": "CE-U: Cross Entropy Unlearning",
    "id": "2503.01224",
    "citation": (
        "@article{yang2025ceu,\n"
        "    title   = {{CE-U: Cross Entropy Unlearning}},\n"
        "    author  = {Bo Yang},\n"
        "    journal = {arXiv preprint arXiv:2503.01224},\n"
        "    year    = {2025}\n"
        "}"
    ),
}
# RMU was introduced with the WMDP benchmark: its paper is the benchmark spec's (one copy).
RMU = {"title": _WMDP.title, "id": _WMDP.paper_id, "citation": _WMDP.citation}
PDU = {
    "title": "Constrained Entropic Unlearning: A Primal-Dual Framework for Large Language Models",
    "id": "2506.05314",
    "citation": (
        "@article{entesari2025constrained,\n"
        "    title   = {{Constrained Entropic Unlearning: A Primal-Dual Framework for Large Language Models}},\n"
        "    author  = {Taha Entesari and Arman Hatami and Rinat Khaziev and Anil Ramakrishna and Mahyar Fazlyab},\n"
        "    journal = {arXiv preprint arXiv:2506.05314},\n"
        "    year    = {2025}\n"
        "}"
    ),
}
