"""Papers (title, arXiv id, BibTeX) of the methods added after the first five, for model cards."""

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
RMU = {
    "title": "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning",
    "id": "2403.03218",
    "citation": (
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
}
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
