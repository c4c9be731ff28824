"""A sampling that fails the checks is continued, or sampled once more more carefully (retry)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import scalebayes as sb
from scalebayes.discrepancy.base import Stage
from scalebayes.health import Diagnostics, diagnose
from scalebayes.retry import MAX_SLOW_SEGMENTS, careful, sample_carefully, thinned

CHAINS, DRAWS = 4, 500


def _block(n_divergent: int = 0, seed: int = 0):
    """Independent draws of two sites (R-hat ~1.00, bulk ESS ~2000) and ``n_divergent``."""
    rng = np.random.default_rng(seed)
    diverging = np.zeros((CHAINS, DRAWS), bool)
    diverging.flat[:n_divergent] = True
    stats = {"diverging": diverging, "reached_max_treedepth": np.zeros((CHAINS, DRAWS), bool)}
    draws = {"a": rng.normal(size=(CHAINS, DRAWS)), "_raw": rng.normal(size=(CHAINS, DRAWS))}
    return draws, stats


def _sampler(*runs):
    """A stand-in for a stage's sampler: hands out ``runs`` in turn, records each stage."""
    stages = []

    def sample(stage):
        stages.append(stage)
        return list(runs[len(stages) - 1]), 1.5, 4

    return sample, stages


def test_careful_doubles_the_warmup_and_raises_the_target_acceptance():
    stage = Stage("law", None, min_target_accept=0.9, label="isoFLOP")
    again = careful(stage)
    assert (again.min_target_accept, again.warmup_factor, again.label) == (
        0.95, 2, "isoFLOP retry"
    )  # fmt: skip
    assert again.key == stage.key  # the same model, sampled with other settings
    # The engine turns it into settings: 2 x the warmup, the larger target acceptance.
    from scalebayes import engine

    settings = engine.stage_settings(sb.Settings(warmup=300, target_accept=0.99), again)
    assert (settings.warmup, settings.target_accept) == (600, 0.99)


def test_a_healthy_run_is_not_sampled_again():
    sample, stages = _sampler([_block(), _block(seed=1)])
    blocks, compile_s, devices = sample_carefully(sample, Stage("law", None))
    assert len(stages) == 1 and (compile_s, devices) == (1.5, 4)
    for _, stats in blocks:
        assert not stats["retried"].any() and not stats["retry_kept"].any()


def test_only_the_failing_table_is_replaced_and_only_by_a_healthier_run():
    first = [_block(n_divergent=20), _block(seed=1), _block(n_divergent=3, seed=2)]
    # Table 0's retry is healthy; table 1 passed and keeps its first run whatever the retry
    # read; table 2's retry diverges more often, so its first run stays.
    retry = [_block(seed=3), _block(n_divergent=50, seed=4), _block(n_divergent=9, seed=5)]
    sample, stages = _sampler(first, retry)
    blocks, compile_s, _ = sample_carefully(sample, Stage("law", None))
    assert [s.label for s in stages] == ["law", "law retry"] and compile_s == 3.0
    assert blocks[0][0]["a"] is retry[0][0]["a"]
    assert blocks[1][0]["a"] is first[1][0]["a"]
    assert blocks[2][0]["a"] is first[2][0]["a"]
    flags = [(bool(s["retried"].all()), bool(s["retry_kept"].all())) for _, s in blocks]
    assert flags == [(True, True), (False, False), (True, False)]


def _with_divergences(block, n: int = 20):
    draws, stats = block
    stats = {**stats, "diverging": stats["diverging"].copy()}
    stats["diverging"][0, :n] = True
    return draws, stats


def _law_runs():
    # The shared fit's 81-run ladder design, whose first-stage program the suite has compiled.
    law = sb.load_law("chinchilla")
    design = sb.isoflop_design(sb.simulation.CHINCHILLA_BUDGETS)
    return law, sb.simulate(law, sb.simulation.EPOCH_CHINCHILLA, design, noise=0.01, seed=2)


LAW_OPTIONS = dict(likelihood=sb.Likelihood(discrepancy="none"), chains=4, draws=500, warmup=500,
                   seed=1)  # fmt: skip


def test_a_law_fit_that_diverged_goes_on_with_half_the_step_and_says_so(monkeypatch):
    """The plain law's first run is made to fail (20 divergences written into it).

    Its chains go on from where they stopped at half the adapted step size, and those draws
    alone are kept: no careful retry, no new warmup. This well-posed ladder samples with no
    divergence at the full step (that is the run before the injection), so at half the step the
    continuation passes; the step size it records is half the run's, exactly. R-hat is held to
    1.05 here, not 1.01: a healthy 4 x 500 run of this ladder reads 1.00-1.02 by the seed
    (test_backtest.assert_sampled_well), and which side of 1.01 it lands is not the point.
    """
    from scalebayes import engine, health

    monkeypatch.setattr(health, "RHAT_MAX", 1.05)

    real, calls = engine._Runner.__call__, []

    def first_fails(self, stage, tables, key, slot):
        blocks, compile_s, devices = real(self, stage, tables, key, slot)
        calls.append(stage.label)
        if len(calls) == 1:
            calls.append(float(blocks[0][1]["step_size"][0, -1]))
            blocks = [_with_divergences(blocks[0])]
        return blocks, compile_s, devices

    monkeypatch.setattr(engine._Runner, "__call__", first_fails)
    law, runs = _law_runs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sb.ConvergenceWarning)  # the first run's, injected
        fit = sb.fit(runs, law, **LAW_OPTIONS)
    assert calls[0] == "law" and len(calls) == 2  # sampled once: no careful retry
    d = fit.diagnostics
    assert d.smaller_steps and not d.retried and d.ok, d
    assert "continued with half the step size" in d.notes[0]
    step = fit.idata["sample_stats"]["step_size"].to_numpy()
    np.testing.assert_allclose(step[0], 0.5 * calls[1], rtol=1e-6)
    # The same posterior as a run that did not diverge: each exponent's mean agrees with the
    # plain fit's within 4 standard errors of the difference (Monte Carlo, from each run's bulk
    # ESS: a chain restarted off the posterior or a wrong kernel moves it by many), and its sd
    # within 20 % (ESS ~1000 each: the sd's relative error is ~3 %).
    import arviz_stats as azs

    plain = sb.fit(runs, law, **{**LAW_OPTIONS, "seed": 2})
    for name in ("alpha", "beta"):
        ours, theirs = (f.posterior[name].to_numpy() for f in (fit, plain))
        error = np.hypot(*(x.std() / np.sqrt(float(azs.ess(x))) for x in (ours, theirs)))
        assert abs(ours.mean() - theirs.mean()) < 4 * error, name
        assert ours.std() == pytest.approx(theirs.std(), rel=0.2), name


def test_a_law_fit_still_diverging_is_sampled_again_more_carefully(monkeypatch):
    """Divergences written into the first run and into its continuation: the careful retry.

    The retry (twice the warmup, target acceptance 0.95) of this well-posed ladder is kept
    unless it fails two checks at once (health.healthier: one failed check without divergences
    beats 20 divergences). At 4 x 500 draws its bulk ESS is ~1000 against the 400 required, so
    failing both R-hat and ESS is far off.
    """
    from scalebayes import engine

    real, real_extend, calls = engine._Runner.__call__, engine._Runner.extend, []

    def first_fails(self, stage, tables, key, slot):
        blocks, compile_s, devices = real(self, stage, tables, key, slot)
        effective = engine.stage_settings(self.settings, stage)
        calls.append((stage.label, effective.warmup, effective.target_accept))
        if len(calls) == 1:
            blocks = [_with_divergences(blocks[0])]
        return blocks, compile_s, devices

    def continuation_fails(self, stage, step_scale=1.0):
        calls.append(("more", step_scale))
        return [_with_divergences(b) for b in real_extend(self, stage, step_scale)]

    monkeypatch.setattr(engine._Runner, "__call__", first_fails)
    monkeypatch.setattr(engine._Runner, "extend", continuation_fails)
    law, runs = _law_runs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sb.ConvergenceWarning)  # the first run's, injected
        phases = []
        fit = sb.fit(runs, law, progress=lambda d, t, phase: phases.append(phase), **LAW_OPTIONS)
    assert calls == [("law", 500, 0.8), ("more", 0.5), ("law retry", 1000, 0.95)]
    # The progress says the sampler went on and started again, and why the count restarts.
    assert phases[0] == "warmup" and "law more sampling" in phases
    assert "law retry warmup" in phases and phases[-1] == "law retry sampling"
    d = fit.diagnostics
    assert d.retried and d.retry_kept and not d.smaller_steps and d.n_divergent < 20, d
    assert "the retry was healthier and is the run kept" in d.notes[0]


def _mixing(block) -> Diagnostics:
    """Real diagnostics of healthy draws, but R-hat 1.02 (failed, no divergence) where most of
    the draws carry the ``slow`` mark: which runs fail is set by the test, not by how random
    draws fall against the 1.01 threshold. Thinning keeps the marks of the draws it keeps."""
    draws, stats = block
    real = diagnose({k: v for k, v in draws.items() if not k.startswith("_")}, stats)
    slow = float(np.mean(stats.get("slow", 0.0))) > 0.75
    return dataclasses.replace(real, max_rhat=1.02 if slow else real.max_rhat)


def _slow(block, slow: bool = True):
    draws, stats = block
    return draws, {**stats, "slow": np.full((CHAINS, DRAWS), slow)}


def test_a_slow_run_is_continued_every_second_draw_kept_and_not_sampled_again():
    first = [_slow(_block()), _block(seed=1)]
    # Half the draws kept are marked (the continuation's are not): table 0 passes now.
    continued = [_slow(_block(seed=2), False), _block(seed=3)]
    sample, stages = _sampler(first)
    extended = []

    def extend(stage, scale):
        extended.append(stage)
        return continued

    blocks, compile_s, _ = sample_carefully(sample, Stage("law", None), _mixing, extend)
    assert len(stages) == 1 and len(extended) == 1 and compile_s == 1.5  # no careful retry
    # Table 0: its run and the continuation as one chain twice as long, every second draw.
    both = np.concatenate([first[0][0]["a"], continued[0][0]["a"]], axis=1)
    np.testing.assert_array_equal(blocks[0][0]["a"], both[:, 1::2])
    assert blocks[0][0]["a"].shape == (CHAINS, DRAWS)  # the fit's shape stays
    assert blocks[1][0]["a"] is first[1][0]["a"]  # table 1 passed: its own run
    flags = [(bool(s["extended"].all()), bool(s["retried"].any())) for _, s in blocks]
    assert flags == [(True, False), (False, False)]


def test_a_run_that_diverged_goes_on_with_smaller_steps_and_one_still_failing_is_retried():
    # Table 0 mixes slowly and going on (to MAX_SLOW_SEGMENTS segments) does not help; table 1
    # diverged and goes on at half the step, its continuation alone kept; table 2 diverged and
    # diverges again: both 0 and 2 go to the careful retry, healthy there.
    first = [_slow(_block()), _block(n_divergent=5, seed=1), _block(n_divergent=5, seed=2)]
    first = [_slow(b, i == 0) for i, b in enumerate(first)]
    slow_more = [_slow(_block(seed=3)), _slow(_block(seed=4), False), _slow(_block(seed=5), False)]
    smaller = [_slow(_block(seed=6), False), _slow(_block(seed=7), False)]
    smaller.append(_slow(_block(n_divergent=2, seed=8), False))
    retry = [_block(seed=9), _block(seed=10), _block(seed=11)]
    sample, stages = _sampler(first, retry)
    scales = []

    def extend(stage, scale):
        scales.append(scale)
        return slow_more if scale == 1.0 else smaller

    blocks, _, _ = sample_carefully(sample, Stage("law", None), _mixing, extend)
    assert scales == [1.0] * (MAX_SLOW_SEGMENTS - 1) + [0.5]
    assert [s.label for s in stages] == ["law", "law retry"]
    assert blocks[0][0]["a"] is retry[0][0]["a"]
    assert blocks[1][0]["a"] is smaller[1][0]["a"]  # the continuation alone
    assert blocks[2][0]["a"] is retry[2][0]["a"]
    flags = [
        tuple(bool(stats[k].all()) for k in ("extended", "smaller_steps", "retry_kept"))
        for _, stats in blocks
    ]
    assert flags == [(False, False, True), (False, True, False), (False, False, True)]


def test_a_run_that_diverged_and_is_slow_at_the_smaller_step_goes_on_there():
    """Diverged, continued at half the step without diverging but still mixing too slowly: it
    goes on at that step (the engine keeps the halved step, so scale 1), every second draw of
    the two half-step segments kept, and is not sampled again."""
    first = [_slow(_block(n_divergent=5))]
    half_step = [_slow(_block(seed=1))]  # no divergence, most draws marked slow: R-hat 1.02
    more = [_slow(_block(seed=2), False)]  # half the kept draws unmarked: it passes
    sample, stages = _sampler(first)
    scales = []

    def extend(stage, scale):
        scales.append(scale)
        return half_step if len(scales) == 1 else more

    blocks, _, _ = sample_carefully(sample, Stage("law", None), _mixing, extend)
    assert scales == [0.5, 1.0] and len(stages) == 1
    both = np.concatenate([half_step[0][0]["a"], more[0][0]["a"]], axis=1)
    np.testing.assert_array_equal(blocks[0][0]["a"], both[:, 1::2])
    stats = blocks[0][1]
    assert (stats["extended"] == 1).all() and stats["smaller_steps"].all()
    assert not stats["retried"].any()
    assert _mixing(blocks[0]).ok
    (note,) = _mixing(blocks[0]).notes  # one account of both continuations, in their order
    assert "half the step size" in note and "went on at that step for as many draws again" in note


def test_a_run_slow_twice_goes_on_again_every_third_draw_kept():
    # Table 0's run and first continuation are marked slow; the second continuation is not, so
    # of every third draw of chains three times as long a third is unmarked, under the 3/4
    # mark that _mixing reads as slow: it passes there.
    first = [_slow(_block())]
    more = [[_slow(_block(seed=1))], [_slow(_block(seed=2), False)]]
    sample, stages = _sampler(first)

    def extend(stage, scale):
        assert scale == 1.0
        return more.pop(0)

    blocks, _, _ = sample_carefully(sample, Stage("law", None), _mixing, extend)
    assert not more and len(stages) == 1
    both = np.concatenate(
        [first[0][0]["a"], _block(seed=1)[0]["a"], _block(seed=2)[0]["a"]], axis=1
    )
    np.testing.assert_array_equal(blocks[0][0]["a"], both[:, 2::3])
    assert (blocks[0][1]["extended"] == 2).all() and not blocks[0][1]["retried"].any()
    assert (
        "for 2 times as many draws again and every third draw kept" in _mixing(blocks[0]).notes[0]
    )


def test_a_run_short_of_tail_draws_is_continued():
    """Tail ESS is a check: a run with enough bulk but too few tail draws goes on."""
    d = diagnose(*_block())
    short = dataclasses.replace(d, min_ess_tail=150.0)
    assert d.ok and not short.ok
    assert any("ESS tail 150 < 400" in p and "90 % intervals" in p for p in short.problems)
    first, continued = _block(), _block(seed=1)
    calls = []

    def health(block):
        calls.append(block)
        real = diagnose({k: v for k, v in block[0].items() if not k.startswith("_")}, block[1])
        return dataclasses.replace(real, min_ess_tail=150.0) if len(calls) == 1 else real

    sample, stages = _sampler([first])
    blocks, _, _ = sample_carefully(sample, Stage("law", None), health, lambda s, k: [continued])
    assert len(stages) == 1 and blocks[0][1]["extended"].all()


def test_chains_stuck_apart_go_straight_to_the_careful_retry():
    """A run whose ESS could not reach the floor even MAX_SLOW_SEGMENTS times as long is not
    continued."""
    stuck = _block()

    def health(block):
        real = diagnose({k: v for k, v in block[0].items() if not k.startswith("_")}, block[1])
        if block is stuck:  # R-hat 1.19, ESS 16: 6 x 16 < 400
            return dataclasses.replace(real, max_rhat=1.19, min_ess_bulk=16.0)
        return real

    sample, stages = _sampler([stuck], [_block(seed=1)])

    def extend(stage, scale):
        raise AssertionError("a run stuck apart is not continued")

    blocks, _, _ = sample_carefully(sample, Stage("law", None), health, extend)
    assert [s.label for s in stages] == ["law", "law retry"]
    assert blocks[0][1]["retry_kept"].all() and not blocks[0][1]["extended"].any()


def test_thinning_hides_no_divergence():
    # A divergence on a draw that thinning drops marks the draw kept beside it.
    first, more = _block(), _block(seed=1)
    first[1]["diverging"][0, 0] = True  # draw 0: dropped (draws 1, 3, ... are kept)
    more[1]["reached_max_treedepth"][2, 7] = True  # draw DRAWS + 7: kept itself
    _, stats = thinned([first, more])
    assert stats["diverging"].sum() == 1 and stats["diverging"][0, 0]
    assert stats["reached_max_treedepth"].sum() == 1
    assert stats["reached_max_treedepth"][2, (DRAWS + 7) // 2]


def _first_slow(real):
    """``real`` health, but the first run reported slow (R-hat 1.2, no divergence)."""
    calls = []

    def health(block):
        calls.append(1)
        d = real(block)
        return dataclasses.replace(d, max_rhat=1.2) if len(calls) == 1 else d

    return health


def test_a_slow_law_fit_is_continued_and_says_so(monkeypatch, tmp_path):
    """A plain-law fit whose first run is reported slow keeps its chains and samples on.

    The kept draws are every second draw of the run and its continuation: the first half of
    them is the run's own odd draws, exactly (the same compiled sampler and seed). R-hat is held
    to 1.05 (as above): the continued run's real health decides, not a seed's side of 1.01.
    """
    from scalebayes import health, retry

    monkeypatch.setattr(health, "RHAT_MAX", 1.05)

    law, runs = _law_runs()
    options = LAW_OPTIONS
    plain = sb.fit(runs, law, **options)
    monkeypatch.setattr(retry, "block_health", _first_slow(retry.block_health))
    phases = []
    fit = sb.fit(runs, law, progress=lambda d, t, phase: phases.append(phase), **options)
    d = fit.diagnostics
    assert d.extended and not d.retried, d
    assert "continued for as many draws again" in d.notes[0]
    assert "law more sampling" in phases and not any("retry" in p for p in phases)
    alpha = fit.posterior["alpha"].to_numpy()
    assert alpha.shape == plain.posterior["alpha"].to_numpy().shape  # (4, 500)
    np.testing.assert_array_equal(alpha[:, :250], plain.posterior["alpha"].to_numpy()[:, 1::2])
    # The count of continuations is the fit's record: it survives a save and a load.
    sb.save_fit(fit, tmp_path / "fit.nc")
    assert sb.load_fit(tmp_path / "fit.nc").diagnostics.extended == d.extended >= 1
