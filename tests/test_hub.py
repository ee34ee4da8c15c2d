"""Publishing to the Hub, offline: a recording fake of the Hub API behind ``huggingface_hub``'s HTTP client.

``huggingface_hub.set_client_factory`` swaps the shared ``httpx2.Client`` for one whose transport is
:class:`FakeHub`: it answers the endpoints an upload uses (repo creation, YAML validation,
pre-upload, commit, file resolution, whoami) and records every request, so the tests check the
exact files and card metadata a push would upload. The factory leaves out ``huggingface_hub``'s
request hook, the only place ``HF_HUB_OFFLINE`` blocks requests: nothing leaves the process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import textwrap
from urllib.parse import unquote

import httpx2
import pytest
import yaml
from huggingface_hub import EvalResult, ModelCard, constants, set_client_factory
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.utils._http import default_client_factory

from trl_unlearn.hub import (
    MissingModelCardError,
    SPACE_FILES,
    metric_space_files,
    publish_metric_module,
    push_results_to_hub,
)
from trl_unlearn.model_card import RESULTS_END, RESULTS_START

TOKEN = "hf_fake_token_never_logged_123"
USER = "test-user"
_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


class FakeHub:
    """In-memory Hub: repositories, their files per revision, and a log of what was sent."""

    def __init__(self, user: str = USER):
        self.user = user
        self.repos: dict[tuple[str, str], dict] = {}  # (repo_type, repo_id) -> {"private", "sdk", "files": {rev: {}}}
        self.created: list[dict] = []  # payloads of /api/repos/create
        self.commits: list[dict] = []
        self.validated: list[dict] = []
        self.requests: list[httpx2.Request] = []

    # -- helpers for tests --------------------------------------------------------------------------
    def add_repo(self, repo_id, files=None, repo_type="model", revision="main"):
        repo = self.repos.setdefault((repo_type, repo_id), {"private": False, "sdk": None, "files": {}})
        encoded = {k: v.encode() if isinstance(v, str) else v for k, v in (files or {}).items()}
        repo["files"].setdefault(revision, {}).update(encoded)
        return repo

    def files(self, repo_id, repo_type="model", revision="main"):
        return self.repos[(repo_type, repo_id)]["files"].get(revision, {})

    # -- transport ----------------------------------------------------------------------------------
    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = unquote(request.url.raw_path.decode().split("?")[0])
        method = request.method
        if method == "GET" and path == "/api/whoami-v2":
            if "authorization" not in request.headers:
                return _error(401, "Unauthorized")
            return httpx2.Response(200, json={"type": "user", "name": self.user, "orgs": [], "auth": {}})
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(request.content))
        if method == "POST" and path == "/api/validate-yaml":
            body = json.loads(request.content)
            self.validated.append(body)
            match = re.match(r"^---\n(.*?)\n---", body["content"], re.S)
            try:
                yaml.safe_load(match.group(1) if match else "")
            except yaml.YAMLError as error:
                return httpx2.Response(400, text=str(error))
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        match = re.match(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)/(preupload|commit)/(.+)$", path)
        if method == "POST" and match:
            repo_type, repo_id, action, revision = match.group(1)[:-1], match.group(2), match.group(3), match.group(4)
            if (repo_type, repo_id) not in self.repos:
                return _error(404, "Repository not found", "RepoNotFound")
            if action == "preupload":
                files = json.loads(request.content)["files"]
                # every file inline ("regular"): the commit payload then carries the exact bytes
                modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files]
                return httpx2.Response(200, json={"files": modes})
            return self._commit(repo_type, repo_id, revision, request)
        match = re.match(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if method in ("GET", "HEAD") and match:
            repo_type = (match.group(1) or "models")[:-1]
            repo_id, revision, filename = match.group(2), match.group(3), match.group(4)
            if (repo_type, repo_id) not in self.repos:
                return _error(404, "Repository not found", "RepoNotFound")
            content = self.repos[(repo_type, repo_id)]["files"].get(revision, {}).get(filename)
            if content is None:
                return _error(404, "Entry not found", "EntryNotFound")
            headers = {
                "X-Repo-Commit": hashlib.sha1(revision.encode()).hexdigest(),
                "ETag": f'"{hashlib.sha1(content).hexdigest()}"',
                "Content-Length": str(len(content)),
            }
            return httpx2.Response(200, headers=headers, content=b"" if method == "HEAD" else content)
        return _error(500, f"FakeHub does not serve {method} {path}")

    def _create_repo(self, payload):
        self.created.append(payload)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        url = f"{constants.ENDPOINT}/{_PREFIXES[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.repos:  # the Hub answers 409 with the existing repo's url
            return httpx2.Response(409, json={"error": "You already created this repo", "url": url})
        self.repos[(repo_type, repo_id)] = {
            "private": payload.get("visibility") == "private",
            "sdk": payload.get("sdk"),
            "files": {"main": {}},
        }
        return httpx2.Response(200, json={"url": url})

    def _commit(self, repo_type, repo_id, revision, request):
        lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        files = {
            line["value"]["path"]: base64.b64decode(line["value"]["content"]) for line in lines if line["key"] == "file"
        }
        create_pr = request.url.params.get("create_pr") == "1"
        commit = {
            "repo_type": repo_type,
            "repo_id": repo_id,
            "revision": revision,
            "create_pr": create_pr,
            "summary": header["summary"],
            "description": header.get("description", ""),
            "files": files,
            "lfs_files": [line["value"]["path"] for line in lines if line["key"] == "lfsFile"],
            "authorization": request.headers.get("authorization"),
        }
        self.commits.append(commit)
        target = "refs/pr/1" if create_pr else revision
        self.repos[(repo_type, repo_id)]["files"].setdefault(target, {}).update(files)
        oid = hashlib.sha1(json.dumps(commit["summary"]).encode()).hexdigest()
        body = {"commitUrl": f"{constants.ENDPOINT}/{_PREFIXES[repo_type]}{repo_id}/commit/{oid}", "commitOid": oid}
        if create_pr:
            body["pullRequestUrl"] = f"{constants.ENDPOINT}/{_PREFIXES[repo_type]}{repo_id}/discussions/1"
        return httpx2.Response(200, json=body)


def _error(status, message, code=None):
    headers = {"X-Error-Code": code} if code else {}
    return httpx2.Response(status, headers=headers, json={"error": message})


@pytest.fixture
def fake_hub(monkeypatch):
    hub = FakeHub()
    # The fake client is the whole Hub here: for trl-unlearn's offline check, the Hub is online.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub), follow_redirects=True))
    try:
        yield hub
    finally:
        set_client_factory(default_client_factory)


def _card(content: bytes) -> ModelCard:
    return ModelCard(content.decode("utf-8"))


def _save(content: bytes, folder) -> str:
    path = folder / "README.md"
    path.write_bytes(content)
    return str(path)


EXISTING_CARD = textwrap.dedent(
    """\
    ---
    license: apache-2.0
    tags:
    - text-generation
    model-index:
    - name: someone-model
      results:
      - task:
          type: text-generation
        dataset:
          name: MMLU
          type: cais/mmlu
        metrics:
        - type: acc
          value: 0.41
    ---

    # Someone's model

    Unlearned with another library.
    """
)

# What Trainer.save_model writes for a tiny Llama and its tokenizer (transformers 5), plus the card
EXPECTED_MODEL_FILES = [
    "README.md",
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_args.bin",
]
TOFU_SUMMARY = {"forget_quality": 0.0123, "model_utility": 0.5874, "forget_truth_ratio": 0.6412, "privleak": -12.5}


# --------------------------------------------------------------------------------------------------
# push_results_to_hub
# --------------------------------------------------------------------------------------------------


def test_push_results_adds_model_index_and_table_to_a_foreign_card(fake_hub, caplog):
    fake_hub.add_repo("someone/model", {"README.md": EXISTING_CARD, "model.safetensors": b"weights"})
    with caplog.at_level(logging.DEBUG):
        info = push_results_to_hub(
            "someone/model", TOFU_SUMMARY, benchmark="TOFU", dataset_config="forget10", token=TOKEN
        )

    assert len(fake_hub.commits) == 1
    commit = fake_hub.commits[0]
    assert set(commit["files"]) == {"README.md"} and commit["lfs_files"] == []  # weights untouched
    assert commit["revision"] == "main" and commit["create_pr"] is False
    assert commit["summary"] == "Add unlearning evaluation results (locuslab/TOFU forget10)"
    assert commit["authorization"] == f"Bearer {TOKEN}"
    assert info.oid and "someone/model/commit/" in info.commit_url
    assert fake_hub.files("someone/model")["model.safetensors"] == b"weights"

    card = _card(commit["files"]["README.md"])
    assert card.data.license == "apache-2.0" and card.data.tags == ["text-generation"]
    assert card.data.model_name == "someone-model"
    previous, *tofu = card.data.eval_results
    assert (previous.dataset_type, previous.metric_type, previous.metric_value) == ("cais/mmlu", "acc", 0.41)
    assert [(r.metric_type, r.metric_value) for r in tofu] == list(TOFU_SUMMARY.items())
    assert {(r.task_type, r.dataset_type, r.dataset_config, r.dataset_name) for r in tofu} == {
        ("text-generation", "locuslab/TOFU", "forget10", "TOFU (forget10)")
    }
    assert card.text.startswith("\n# Someone's model\n\nUnlearned with another library.\n\n## Unlearning evaluation\n")
    assert "| Forget quality | `forget_quality` | 0.0123 |" in card.text
    assert "| PrivLeak | `privleak` | -12.5000 |" in card.text
    assert "MMLU" not in card.text  # only trl-unlearn's results go in the table
    assert TOKEN not in caplog.text


def test_push_results_replaces_the_same_evaluation_and_keeps_others(fake_hub):
    fake_hub.add_repo("me/npo", {"README.md": EXISTING_CARD})
    push_results_to_hub("me/npo", TOFU_SUMMARY, benchmark="tofu", dataset_config="forget10", token=TOKEN)
    push_results_to_hub("me/npo", {"forget_quality": 0.9}, benchmark="TOFU", dataset_config="forget05", token=TOKEN)
    # re-evaluation of forget10: replaces all its metrics (the dropped ones too)
    push_results_to_hub(
        "me/npo",
        [{"benchmark": "TOFU", "dataset_config": "forget10", "summary": {"model_utility": 0.6}}],
        token=TOKEN,
    )
    card = _card(fake_hub.files("me/npo")["README.md"])
    assert [(r.dataset_type, r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("cais/mmlu", None, "acc", 0.41),
        ("locuslab/TOFU", "forget05", "forget_quality", 0.9),
        ("locuslab/TOFU", "forget10", "model_utility", 0.6),
    ]
    # one results section, regenerated in place
    assert card.text.count(RESULTS_START) == 1 and card.text.count(RESULTS_END) == 1
    assert card.text.count("## Unlearning evaluation") == 1
    assert "| Model utility | `model_utility` | 0.6000 |" in card.text and "0.5874" not in card.text


def test_push_results_muse_as_pull_request_on_a_revision(fake_hub):
    fake_hub.add_repo("me/npo", {"README.md": EXISTING_CARD}, revision="v2")
    eval_result = EvalResult(
        task_type="text-generation",
        dataset_type="muse-bench/MUSE-News",
        dataset_name="MUSE-News",
        metric_type="privleak",
        metric_value=3.5,
    )
    info = push_results_to_hub(
        "me/npo",
        {"forget_verbmem_ROUGE": 0.21, "retain_knowmem_ROUGE": 0.44},
        benchmark="MUSE",
        dataset_id="muse-bench/MUSE-News",
        revision="v2",
        create_pr=True,
        commit_message="MUSE results",
        commit_description="Evaluated with trl-unlearn.",
        token=TOKEN,
    )
    commit = fake_hub.commits[-1]
    assert (commit["revision"], commit["create_pr"], commit["summary"], commit["description"]) == (
        "v2",
        True,
        "MUSE results",
        "Evaluated with trl-unlearn.",
    )
    assert info.pr_url.endswith("/me/npo/discussions/1")
    card = _card(commit["files"]["README.md"])
    muse = [r for r in card.data.eval_results if r.dataset_type == "muse-bench/MUSE-News"]
    assert [(r.metric_type, r.metric_value, r.dataset_name) for r in muse] == [
        ("forget_verbmem_ROUGE", 0.21, "MUSE-News"),
        ("retain_knowmem_ROUGE", 0.44, "MUSE-News"),
    ]
    # ready EvalResults are accepted too
    push_results_to_hub("me/npo", [eval_result], revision="v2", token=TOKEN)
    assert _card(fake_hub.commits[-1]["files"]["README.md"]).data.eval_results[-1] == eval_result


def test_push_results_errors(fake_hub):
    fake_hub.add_repo("me/no-card", {"config.json": "{}"})
    with pytest.raises(ValueError, match="No results to push"):
        push_results_to_hub("me/no-card", {}, benchmark="TOFU", token=TOKEN)
    with pytest.raises(ValueError, match="needs `benchmark`"):
        push_results_to_hub("me/no-card", TOFU_SUMMARY, token=TOKEN)
    with pytest.raises(ValueError, match="several datasets"):
        push_results_to_hub("me/no-card", {"privleak": 1.0}, benchmark="MUSE", token=TOKEN)
    with pytest.raises(ValueError, match="no numeric value"):
        push_results_to_hub("me/no-card", {"forget_quality": None}, benchmark="TOFU", token=TOKEN)
    with pytest.raises(MissingModelCardError, match="me/no-card has no README.md"):
        push_results_to_hub("me/no-card", TOFU_SUMMARY, benchmark="TOFU", token=TOKEN)
    with pytest.raises(RepositoryNotFoundError):
        push_results_to_hub("me/missing", TOFU_SUMMARY, benchmark="TOFU", token=TOKEN)
    assert fake_hub.commits == []

    push_results_to_hub(
        "me/no-card", TOFU_SUMMARY, benchmark="TOFU", dataset_config="forget01", token=TOKEN, create_missing_card=True
    )
    card = _card(fake_hub.files("me/no-card")["README.md"])
    assert card.data.model_name == "no-card" and card.data.tags == ["unlearning"]
    assert [r.metric_type for r in card.data.eval_results] == list(TOFU_SUMMARY)
    assert set(fake_hub.commits[0]["files"]) == {"README.md"}


# --------------------------------------------------------------------------------------------------
# Metric modules as Spaces
# --------------------------------------------------------------------------------------------------

METRIC_SCRIPT = textwrap.dedent(
    '''\
    """Share of exact matches, a toy module for the publishing tests."""

    import datasets
    import evaluate

    from .helpers import exact

    _DESCRIPTION = """Fraction of predictions equal to their reference.

    Second paragraph, left out of the short description."""
    _CITATION = "@misc{toy, title={Toy}}"
    _KWARGS_DESCRIPTION = "predictions (list of str), references (list of str)."


    class ToyMatch(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(
                description=_DESCRIPTION,
                citation=_CITATION,
                inputs_description=_KWARGS_DESCRIPTION,
                features=datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
                ),
            )

        def _compute(self, predictions, references):
            return {"toy_match": sum(exact(p, r) for p, r in zip(predictions, references)) / len(predictions)}
    '''
)


TOY_SPACE = {
    "README.md": "---\ntitle: Toy Match\nsdk: gradio\napp_file: app.py\ntags:\n- evaluate\n- metric\n---\n\n# Toy card\n",
    "app.py": (
        "from pathlib import Path\n\nimport evaluate\nfrom evaluate.utils import launch_gradio_widget\n\n"
        'launch_gradio_widget(evaluate.load(str(Path(__file__).with_name("toy_match.py"))))\n'
    ),
    "requirements.txt": "evaluate>=0.4.3\ntrl-unlearn\n",
}


@pytest.fixture
def toy_module(tmp_path):
    folder = tmp_path / "toy_match"
    folder.mkdir()
    (folder / "toy_match.py").write_text(METRIC_SCRIPT)
    (folder / "helpers.py").write_text("def exact(a, b):\n    return float(a.strip() == b.strip())\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "toy_match.cpython-311.pyc").write_bytes(b"\0")
    for name in SPACE_FILES:  # the Space files every module folder ships, as the bundled ones
        (folder / name).write_text(TOY_SPACE[name])
    return folder


def test_metric_space_files(toy_module):
    files = metric_space_files(toy_module, "test-user/toy_match")
    assert sorted(files) == ["README.md", "app.py", "helpers.py", "requirements.txt", "toy_match.py"]
    for name in ("toy_match.py", *SPACE_FILES):  # shipped files, published as they are
        assert files[name] == (toy_module / name).read_bytes()


def test_metric_space_files_sets_the_sdk_version_and_requirements(toy_module):
    files = metric_space_files(toy_module, "org/toy_match", sdk_version="5.9.1", requirements=["evaluate", "trl-unlearn @ git+https://x/y"])
    card = files["README.md"].decode()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta == {"title": "Toy Match", "sdk": "gradio", "sdk_version": "5.9.1", "app_file": "app.py",
                    "tags": ["evaluate", "metric"]}  # fmt: skip
    assert card.endswith("\n# Toy card\n")
    assert files["requirements.txt"].decode() == "evaluate\ntrl-unlearn @ git+https://x/y\n"


def test_metric_space_files_errors(tmp_path, toy_module):
    with pytest.raises(FileNotFoundError, match="not found"):
        metric_space_files(tmp_path / "nope", "u/nope")
    with pytest.raises(ValueError, match="Python identifier"):
        metric_space_files(toy_module, "u/toy-match")
    with pytest.raises(FileNotFoundError, match="has no other.py"):
        metric_space_files(toy_module, "u/other")
    (toy_module / "app.py").unlink()
    with pytest.raises(FileNotFoundError, match="lacks app.py: a metric module ships its Space files"):
        metric_space_files(toy_module, "u/toy_match")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="does not load with evaluate.load"):
        metric_space_files(broken, "u/broken")
    for name in SPACE_FILES:
        (broken / name).write_text(TOY_SPACE[name].replace("sdk: gradio", "sdk: docker"))
    (broken / "broken.py").write_text(METRIC_SCRIPT.replace("from .helpers import exact", "exact = None"))
    with pytest.raises(ValueError, match="must declare `sdk: gradio`"):
        metric_space_files(broken, "u/broken")


def test_publish_metric_module_creates_space_and_commits(fake_hub, toy_module, caplog):
    with caplog.at_level(logging.DEBUG):
        space = publish_metric_module(toy_module, token=TOKEN, private=True)
    assert space == "test-user/toy_match"
    assert fake_hub.created == [
        {"name": "toy_match", "organization": "test-user", "visibility": "private", "type": "space", "sdk": "gradio"}
    ]
    (commit,) = fake_hub.commits
    assert (commit["repo_type"], commit["repo_id"], commit["revision"]) == ("space", "test-user/toy_match", "main")
    assert sorted(commit["files"]) == ["README.md", "app.py", "helpers.py", "requirements.txt", "toy_match.py"]
    assert commit["summary"] == "Publish the toy_match metric module (trl-unlearn)"
    assert fake_hub.repos[("space", "test-user/toy_match")]["sdk"] == "gradio"
    # README validated as a Space card before the commit
    assert [v["repoType"] for v in fake_hub.validated] == ["space"]
    # publishing again updates the existing Space (exist_ok) in the namespace given
    assert publish_metric_module(toy_module / "toy_match.py", "test-user", token=TOKEN) == "test-user/toy_match"
    assert len(fake_hub.commits) == 2
    assert TOKEN not in caplog.text


def test_published_space_loads_with_evaluate(fake_hub, toy_module, monkeypatch, tmp_path):
    """What ``evaluate.load("<namespace>/<metric>")`` downloads from the Space is enough to run it."""
    import evaluate
    import requests

    publish_metric_module(toy_module, "org", token=TOKEN)
    served = fake_hub.files("org/toy_match", repo_type="space")
    fetched = []

    def fake_request(method, url, **kwargs):
        match = re.match(r"^https://huggingface\.co/spaces/org/toy_match/resolve/[^/]+/(.+)$", url)
        response = requests.Response()
        response.url, response.headers["ETag"] = url, '"etag"'
        content = served.get(match.group(1)) if match else None
        response.status_code = 200 if content is not None else 404
        response._content, response._content_consumed = content or b"", True
        fetched.append((method, match.group(1) if match else url, response.status_code))
        return response

    monkeypatch.setattr(requests, "request", fake_request)
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", False)
    monkeypatch.setattr(evaluate.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)
    metric = evaluate.load("org/toy_match", cache_dir=str(tmp_path / "cache"))
    assert metric.compute(predictions=["a", "b"], references=["a", "c"]) == {"toy_match": 0.5}
    assert {name for _, name, status in fetched if status == 200} == {"toy_match.py", "helpers.py"}


# --------------------------------------------------------------------------------------------------
# trainer.push_to_hub() end to end
# --------------------------------------------------------------------------------------------------


def test_npo_trainer_push_to_hub_uploads_model_and_card(fake_hub, tmp_path, caplog):
    from datasets import Dataset

    from trl_unlearn import NPOConfig, NPOTrainer
    from trl_unlearn.testing import fictitious_qa, make_model, make_tokenizer

    forget, retain = fictitious_qa(4), fictitious_qa(4, offset=10)
    tokenizer = make_tokenizer([r["question"] + " " + r["answer"] for r in forget + retain])
    model = make_model(tokenizer)
    model.config._name_or_path = "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
    args = NPOConfig(
        output_dir=str(tmp_path / "tiny-npo"),
        push_to_hub=True,  # the repository is created when the trainer is
        hub_model_id="tiny-npo",  # no namespace: the Hub puts it under the token's user
        hub_token=TOKEN,
        hub_private_repo=True,
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    trainer = NPOTrainer(
        model,
        args=args,
        forget_dataset=Dataset.from_list(forget),
        retain_dataset=Dataset.from_list(retain),
        processing_class=tokenizer,
    )
    assert fake_hub.created == [{"name": "tiny-npo", "organization": None, "visibility": "private"}]
    assert trainer.hub_model_id == f"{USER}/tiny-npo"
    trainer.train()
    trainer.eval_results.append(
        {"benchmark": "TOFU", "dataset_id": "locuslab/TOFU", "dataset_config": "forget01", "summary": TOFU_SUMMARY}
    )

    with caplog.at_level(logging.DEBUG):
        info = trainer.push_to_hub(
            commit_message="Unlearn forget01 with NPO",
            # transformers' create_model_card arguments, passed through push_to_hub(**kwargs)
            language="en",
            license="apache-2.0",
            tasks="text-generation",
            dataset_args="forget01",
        )
    (commit,) = fake_hub.commits
    assert (commit["repo_type"], commit["repo_id"], commit["revision"]) == ("model", f"{USER}/tiny-npo", "main")
    assert commit["summary"] == "Unlearn forget01 with NPO" and commit["authorization"] == f"Bearer {TOKEN}"
    assert sorted(commit["files"]) == EXPECTED_MODEL_FILES
    assert info.oid and info.commit_url.endswith(f"{USER}/tiny-npo/commit/{info.oid}")

    card = _card(commit["files"]["README.md"])
    assert card.data.base_model == "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
    assert card.data.tags == ["trl", "trl-unlearn", "unlearning", "npo"]
    assert (card.data.license, card.data.language, card.data.library_name) == ("apache-2.0", "en", "transformers")
    assert card.data.model_name == "tiny-npo"
    assert [(r.dataset_type, r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("locuslab/TOFU", "forget01", key, value) for key, value in TOFU_SUMMARY.items()
    ]
    for expected in [
        "| `beta` | `0.1` |",
        "| `retain_loss_type` | `nll` |",
        "| Max steps | 2 |",
        "| Optimisation steps taken | 2 |",
        "- **Forget set**: a dataset built in memory (4 examples).",
        "https://huggingface.co/papers/2404.05868",
        'model="test-user/tiny-npo"',
        "| Forget quality | `forget_quality` | 0.0123 |",
    ]:
        assert expected in card.text, expected

    # a later push to another branch, private flag and revision from TRL/transformers arguments
    trainer.push_to_hub(commit_message="Second push", revision="experiment")
    assert fake_hub.commits[-1]["revision"] == "experiment" and fake_hub.commits[-1]["summary"] == "Second push"
    assert len(fake_hub.created) == 1  # the repository is not created twice
    assert TOKEN not in caplog.text


def test_publish_the_bundled_metric_modules(fake_hub):
    from trl_unlearn.evaluation.modules import list_metric_modules, metric_module_path
    from trl_unlearn.hub import publish_metric_modules

    names = list_metric_modules()
    assert names  # the package ships modules
    spaces = publish_metric_modules(token=TOKEN)  # namespace: the token's user
    assert spaces == {name: f"{USER}/{name}" for name in names}
    assert [payload["name"] for payload in fake_hub.created] == names
    assert all((p["type"], p["sdk"], p.get("visibility")) == ("space", "gradio", "public") for p in fake_hub.created)
    for name, commit in zip(names, fake_hub.commits):
        assert commit["repo_id"] == f"{USER}/{name}" and commit["repo_type"] == "space"
        assert sorted(commit["files"]) == sorted(["README.md", "app.py", "requirements.txt", f"{name}.py"])
        script = (metric_module_path(name) + f"/{name}.py").replace("\\", "/")
        assert commit["files"][f"{name}.py"] == open(script, "rb").read()
        meta = yaml.safe_load(commit["files"]["README.md"].decode().split("---")[1])
        assert (meta["sdk"], meta["app_file"], meta["tags"][:2]) == ("gradio", "app.py", ["evaluate", "metric"])
        assert meta["description"]  # from the module's own description

    with pytest.raises(ValueError, match=r"Unknown metric modules \['nope'\]"):
        publish_metric_modules("org", names=["nope"], token=TOKEN)


def test_open_unlearning_summaries_round_trip_through_the_hub_card(fake_hub, reference_logs, tmp_path):
    """Every value of open-unlearning's reference summaries survives the push and ``ModelCard`` parsing exactly."""
    summaries = sorted(reference_logs.rglob("*_SUMMARY.json"))
    assert summaries
    fake_hub.add_repo("me/npo", {"README.md": EXISTING_CARD})
    expected = []
    for path in summaries:
        summary = json.loads(path.read_text())
        if path.name == "TOFU_SUMMARY.json":
            # a config per log folder: tofu_<model>_retain90, tofu_<model>_full/evals_forget10
            kwargs = {"benchmark": "TOFU", "dataset_config": path.relative_to(reference_logs).parent.as_posix()}
        else:
            kwargs = {"benchmark": "MUSE", "dataset_id": "muse-bench/MUSE-News", "dataset_config": path.parent.name}
        push_results_to_hub("me/npo", summary, token=TOKEN, **kwargs)
        expected += [(kwargs["dataset_config"], key, value) for key, value in summary.items() if value is not None]
    card = ModelCard.load(_save(fake_hub.files("me/npo")["README.md"], tmp_path))
    assert [(r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results[1:]] == expected
