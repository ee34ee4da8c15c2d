"""Test-wide settings: fully offline, a private HF_HOME, deterministic and small."""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="trl-unlearn-hf-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import copy  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "TRL_UNLEARN_SHARED_DATA" in os.environ:
    SHARED_DATA = Path(os.environ["TRL_UNLEARN_SHARED_DATA"])
REFERENCE_LOGS = SHARED_DATA / "reference_logs"
TOFU_DATA = SHARED_DATA / "tofu"


@pytest.fixture(scope="session")
def reference_logs():
    if not REFERENCE_LOGS.is_dir():
        pytest.skip(f"reference logs not found at {REFERENCE_LOGS} (../shared/data is absent)")
    return REFERENCE_LOGS


@pytest.fixture(scope="session")
def tofu_data_dir():
    if not TOFU_DATA.is_dir():
        pytest.skip(f"TOFU data not found at {TOFU_DATA} (../shared/data is absent)")
    return TOFU_DATA


@pytest.fixture
def tiny_tokenizer():
    from trl_unlearn.testing import fictitious_qa, make_tokenizer

    texts = [r["question"] + " " + r["answer"] for r in fictitious_qa(32)]
    return make_tokenizer(texts)


@pytest.fixture
def tiny_model(tiny_tokenizer):
    from trl_unlearn.testing import make_model

    return make_model(tiny_tokenizer)


@pytest.fixture(scope="session")
def _memorised_once():
    from trl_unlearn.testing import memorisation_task

    return memorisation_task()


@pytest.fixture
def memorised(_memorised_once):
    """``memorisation_task()`` trained once per session; every test gets its own copies."""
    tokenizer, model, forget, retain = _memorised_once
    return copy.deepcopy(tokenizer), copy.deepcopy(model), forget, retain
