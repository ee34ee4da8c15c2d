"""Evaluator options, the one reference argument, the package exports, progress and warnings."""

from __future__ import annotations

import warnings

import pytest

from tests._tofu_fixture import HOLDOUT, TOFU_TINY, single_thread, tiny_model, tiny_tokenizer


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)


def test_package_exports_the_evaluators():
    from trl_unlearn.evaluation import EvalOptions, MUSEEvaluator, TOFUEvaluator
    from trl_unlearn.evaluation.muse_evaluator import MUSEEvaluator as muse_direct
    from trl_unlearn.evaluation.options import EvalOptions as options_direct
    from trl_unlearn.evaluation.tofu_evaluator import TOFUEvaluator as tofu_direct

    assert (TOFUEvaluator, MUSEEvaluator, EvalOptions) == (tofu_direct, muse_direct, options_direct)


def test_options_object_keywords_and_benchmark_defaults():
    from trl_unlearn.evaluation import EvalOptions, MUSEEvaluator, TOFUEvaluator

    tofu = TOFUEvaluator(batch_size=4, limit=2)
    assert (tofu.batch_size, tofu.generation_batch_size, tofu.limit, tofu.share_prompts) == (4, 64, 2, True)
    assert tofu.position_chunk_size is None and tofu.options.attention_mask_mode == "open_unlearning"
    muse = MUSEEvaluator(options=EvalOptions(batch_size=2, progress=False), vocab_chunk_size=7)
    assert (muse.batch_size, muse.generation_batch_size, muse.position_chunk_size) == (2, 2, 512)
    assert (muse.share_prompts, muse.progress, muse.vocab_chunk_size) == (False, False, 7)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['batchsize'\\]"):
        TOFUEvaluator(batchsize=4)
    with pytest.raises(ValueError, match="distributed must be one of"):
        TOFUEvaluator(distributed="all")
    with pytest.raises(ValueError, match="attention_mask_mode"):
        MUSEEvaluator(attention_mask_mode="ou")


def test_former_reference_names_still_work_with_a_deprecation():
    from trl_unlearn.evaluation import MUSEEvaluator, TOFUEvaluator

    with pytest.warns(FutureWarning, match="`retain_reference=` of TOFUEvaluator is deprecated.*`reference=`"):
        assert TOFUEvaluator(retain_reference="x.json").reference == "x.json"
    with pytest.warns(FutureWarning, match="`retrain_reference=` of MUSEEvaluator is deprecated"):
        assert MUSEEvaluator(retrain_reference="y.json").reference == "y.json"
    with pytest.raises(ValueError, match="both `reference=` and `retain_reference=`"), pytest.warns(FutureWarning):
        TOFUEvaluator(reference="a.json", retain_reference="b.json")


def test_tiny_tofu_evaluation_raises_no_future_warning(model, tok, capsys):
    """What `python -W error::FutureWarning` asks of an evaluation: nothing deprecated is used."""
    from trl_unlearn.evaluation import TOFUEvaluator

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        evaluator = TOFUEvaluator("forget10", data_dir=TOFU_TINY, holdout=HOLDOUT, max_new_tokens=4, progress=False)
        results = evaluator.evaluate(model, tok)
        reference = evaluator.evaluate(model, tok, reference=results)
        summary = evaluator.summarize(reference, results)
    assert summary["forget_quality"] == pytest.approx(1.0) and "model_utility" in summary
    err = capsys.readouterr().err
    assert "scoring" not in err and "generating" not in err  # progress=False: no bars


def test_progress_bars_per_phase(model, tok, capsys):
    from trl_unlearn.evaluation import TOFUEvaluator

    evaluator = TOFUEvaluator("forget10", data_dir=TOFU_TINY, holdout=HOLDOUT, max_new_tokens=2, limit=2,
                              metrics=["forget_Q_A_Prob", "forget_Q_A_ROUGE", "mia_gradnorm"])  # fmt: skip
    evaluator.evaluate(model, tok)
    err = capsys.readouterr().err
    assert "scoring" in err and "generating" in err and "gradient norms" in err
