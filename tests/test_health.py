"""Sampler health (scalebayes.health) and the GP's retry rule, on constructed draws: no sampler."""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np
import pytest

import scalebayes as sb
from scalebayes.discrepancy.gp import GP
from scalebayes.errors import ConvergenceWarning
from scalebayes.health import Diagnostics, diagnose, healthier
from scalebayes.likelihood import model_param_names
from scalebayes.results import warn_if_unhealthy
from scalebayes.retry import block_health
from scalebayes.simulation import EPOCH_CHINCHILLA
from scalebayes.testing import fit_from_draws, jittered_draws

CHAINS, DRAWS = 4, 500
HEALTHY = Diagnostics(1.002, 1500.0, 1400.0, 0, 0, CHAINS * DRAWS, CHAINS)


def _stats(n_divergent: int = 0) -> dict[str, np.ndarray]:
    diverging = np.zeros((CHAINS, DRAWS), bool)
    diverging.flat[:n_divergent] = True
    return {"diverging": diverging, "reached_max_treedepth": np.zeros((CHAINS, DRAWS), bool)}


def _mixed(rng: np.random.Generator, size: tuple[int, ...] = ()) -> np.ndarray:
    """Independent draws: R-hat ~1.00, bulk ESS ~2000 of 2000."""
    return rng.normal(size=(CHAINS, DRAWS, *size))


def _stuck(rng: np.random.Generator) -> np.ndarray:
    """Chains that disagree and barely move: AR(1) with rho 0.995 around chain offsets.

    Over 30 seeds R-hat 1.22-2.5 and bulk ESS 5-15: far past 1.01 and 400, not near them
    (independent draws: R-hat at most 1.005 over the same seeds, six sites each).
    """
    noise = rng.normal(size=(CHAINS, DRAWS)) * 0.1
    x = np.zeros((CHAINS, DRAWS))
    for t in range(1, DRAWS):
        x[:, t] = 0.995 * x[:, t - 1] + noise[:, t]
    return x + np.arange(CHAINS)[:, None] * 0.5


def _block(draws: dict[str, np.ndarray], n_divergent: int = 0):
    return draws, _stats(n_divergent)


def test_diagnose_reads_every_entry_of_every_site():
    rng = np.random.default_rng(0)
    good = diagnose({"a": _mixed(rng), "w": _mixed(rng, (3,))}, _stats(2))
    assert good.max_rhat < 1.01 and good.min_ess_bulk > 1000  # 2000 independent draws
    assert good.n_divergent == 2 and good.n_draws == CHAINS * DRAWS and good.chains == CHAINS
    assert good.problems == [good.problems[0]] and "2 divergent" in good.problems[0]
    # One stuck entry of a vector site is enough to fail R-hat and ESS.
    w = _mixed(rng, (3,))
    w[..., 1] = _stuck(rng)
    bad = diagnose({"a": _mixed(rng), "w": w}, _stats())
    assert bad.max_rhat > 1.1 and bad.min_ess_bulk < 100, bad
    assert len(bad.problems) == 3 and not bad.ok  # R-hat, bulk and tail ESS


def test_the_note_counts_a_slow_run_s_continuations():
    # Saved before counts, ``extended`` read True: as one continuation.
    assert (
        "for as many draws again and every second draw"
        in dataclasses.replace(HEALTHY, extended=True).notes[0]
    )
    note = dataclasses.replace(HEALTHY, extended=3).notes[0]
    assert "for 3 times as many draws again and every fourth draw kept" in note


def test_lines_give_the_diagnostics_then_each_warning_and_note():
    continued = dataclasses.replace(HEALTHY, extended=True, min_ess_tail=150.0)
    first, *rest = continued.lines()
    assert first == str(continued) and first.endswith("[CHECK]")
    assert rest[0].startswith("  warning: min ESS tail 150 < ")
    assert rest[1].startswith("  note: a sampling stage mixed too slowly") and len(rest) == 2
    assert HEALTHY.lines() == [str(HEALTHY)]


def test_healthier_prefers_health_then_fewer_failed_checks():
    # Healthy beats anything; both healthy keeps the first (the non-centred run).
    few_divergences = dataclasses.replace(HEALTHY, n_divergent=3)
    stuck = dataclasses.replace(HEALTHY, max_rhat=1.19, min_ess_bulk=16.0)
    assert healthier(few_divergences, HEALTHY) == 1
    assert healthier(HEALTHY, few_divergences) == 0
    assert healthier(HEALTHY, dataclasses.replace(HEALTHY, max_rhat=1.001)) == 0
    # The split: the centred retry had no divergences but R-hat 1.19 and bulk ESS 16
    # (two failed checks); the non-centred run fails one (divergences) and is kept.
    assert healthier(few_divergences, stuck) == 0
    # One failed check each: fewer divergences, then the lower R-hat.
    many_divergences = dataclasses.replace(HEALTHY, n_divergent=91)
    slightly_high_rhat = dataclasses.replace(HEALTHY, max_rhat=1.02)
    assert healthier(many_divergences, slightly_high_rhat) == 1
    assert healthier(slightly_high_rhat, dataclasses.replace(HEALTHY, max_rhat=1.05)) == 0
    assert healthier(dataclasses.replace(HEALTHY, max_rhat=float("nan")), slightly_high_rhat) == 1


class _Tables:
    """Two tables; the fake stages never look inside them."""

    plain = (None, None)

    def full(self) -> tuple[None, None]:
        return (None, None)


def _retry_stages(law_blocks, first, retry, careful=None, more=None):
    """A run_stage that hands out the law's blocks, then the GP's, the centred retry's, and the
    careful non-centred retry's (``careful``, default the first run's again); a continuation
    hands out ``more`` (default the first run's again)."""
    calls = []

    class RunStage:
        def prepare(self, stage, tables):
            pass  # nothing to compile

        def __call__(self, stage, tables, key, slot):
            name = (
                "gp careful" if stage.label.endswith("retry") and stage.key == "gp" else stage.key
            )
            calls.append(name)
            blocks = {"law": law_blocks, "gp": first, "gp_centred": retry,
                      "gp careful": careful or first}[name]  # fmt: skip
            return [(dict(d), dict(s)) for d, s in blocks], 0.0, 1

        def extend(self, stage, scale):
            calls.append(f"{stage.key} more x{scale:g}")
            return [(dict(d), dict(s)) for d, s in (more or first)]

    return RunStage(), calls


def test_gp_keeps_a_retry_only_when_it_is_healthier(monkeypatch):
    rng = np.random.default_rng(1)
    law = sb.load_law("chinchilla")
    likelihood = sb.Likelihood(discrepancy="gp")
    gp = likelihood.discrepancy

    def gp_draws(stuck: bool = False):
        amplitude = _stuck(rng) if stuck else _mixed(rng)
        return {"sigma": _mixed(rng), "gp_amplitude": amplitude, "gp_weights": _mixed(rng, (4,))}

    law_blocks = [_block({"E": _mixed(rng)}), _block({"E": _mixed(rng)})]
    # Table 0 as in the issue: whitened (non-centred then) with 3 divergences, the centred
    # retry stuck (R-hat > 1.1, ESS < 100) with none. Table 1: diverging 60 times, the
    # centred retry healthy.
    first = [_block(gp_draws(), 3), _block(gp_draws(), 60)]
    retry = [_block(gp_draws(stuck=True), 0), _block(gp_draws(), 0)]
    assert [len(block_health(b).problems) for b in (*first, *retry)] == [1, 1, 3, 0]
    # The join is the model's business; here it returns what was chosen.
    retried = []

    def join(self, law, lik, table, lb, gb):
        retried.append(bool(gb[1]["retried"].any()))
        return gb, bool(gb[1]["gp_centred"].all())

    monkeypatch.setattr(GP, "_join", join)
    monkeypatch.setattr(GP, "with_whitening", lambda self, law, table: table)
    run_stage, calls = _retry_stages(law_blocks, first, retry)
    blocks, _, _ = gp.sample_posterior(law, likelihood, _Tables(), jax.random.key(0), run_stage)
    # Both diverged: continued at half the step (here reading as the first run did, so the
    # first is kept). Table 0 is still unhealthy after the centred retry: the careful whitened
    # one runs (here it reads as the first run did, so the first is kept).
    assert calls == ["law", "gp", "gp more x0.5", "gp_centred", "gp careful"]
    assert [centred for _, centred in blocks] == [False, True] and retried == [True, True]
    assert blocks[0][0][1]["diverging"].sum() == 3  # the first draws, divergences kept
    # Both first blocks healthy: no retry at all.
    run_stage, calls = _retry_stages(law_blocks, [_block(gp_draws()), _block(gp_draws())], retry)
    blocks, _, _ = gp.sample_posterior(law, likelihood, _Tables(), jax.random.key(0), run_stage)
    assert calls == ["law", "gp"] and [c for _, c in blocks] == [False, False]
    assert retried[2:] == [False, False]
    # Unhealthy by R-hat and ESS alone, without a divergence, is reason to retry too.
    stuck_first = [_block(gp_draws(stuck=True)), _block(gp_draws())]
    run_stage, calls = _retry_stages(law_blocks, stuck_first, retry)
    blocks, _, _ = gp.sample_posterior(law, likelihood, _Tables(), jax.random.key(0), run_stage)
    # Stuck apart (ESS far below the floor), table 0 is not continued. Its retry is stuck as
    # well (failed checks each, no divergences): the lower R-hat decides, whichever it is;
    # table 1 was healthy and stays whitened, and is not said to have been retried (its batch
    # was, for table 0).
    assert calls == ["law", "gp", "gp_centred", "gp careful"] and blocks[1][1] is False
    assert retried[4:] == [True, False]
    # A careful retry that heals table 0 is kept, non-centred.
    healed = [_block(gp_draws(), 0), _block(gp_draws(), 40)]
    run_stage, calls = _retry_stages(law_blocks, first, retry, careful=healed)
    blocks, _, _ = gp.sample_posterior(law, likelihood, _Tables(), jax.random.key(0), run_stage)
    assert [centred for _, centred in blocks] == [False, True]
    assert blocks[0][0] is not first[0][0] and blocks[0][0][1]["diverging"].sum() == 0
    # A continuation at half the step that heals both is kept: no retry, whitened, and said.
    run_stage, calls = _retry_stages(law_blocks, first, retry, more=healed[:1] * 2)
    blocks, _, _ = gp.sample_posterior(law, likelihood, _Tables(), jax.random.key(0), run_stage)
    assert calls == ["law", "gp", "gp more x0.5"] and [c for _, c in blocks] == [False, False]
    assert all(b[0][1]["smaller_steps"].all() and not b[0][1]["retried"].any() for b in blocks)


@pytest.mark.parametrize(
    ("retry", "said"),
    [
        ((False, False), None),
        ((True, True), "is the run kept"),
        ((True, False), "first run is kept"),
    ],
)
def test_diagnostics_say_when_a_stage_was_sampled_again(retry, said):
    rng = np.random.default_rng(2)
    stats = {
        "diverging": np.zeros((4, 200), bool),
        "reached_max_treedepth": np.zeros((4, 200), bool),
        "retried": np.full((4, 200), retry[0]),
        "retry_kept": np.full((4, 200), retry[1]),
    }
    notes = diagnose({"x": _mixed(rng)}, stats).notes
    assert notes == [] if said is None else (len(notes) == 1 and said in notes[0])
    # Stats from before the flags existed (or a sampler without stages): nothing to say.
    del stats["retried"], stats["retry_kept"]
    assert diagnose({"x": _mixed(rng)}, stats).notes == []


@pytest.mark.parametrize(
    ("flag", "said"),
    [
        ("extended", "continued for as many draws again and every second draw kept"),
        ("smaller_steps", "half the step size"),
    ],
)
def test_diagnostics_say_when_a_stage_was_continued(flag, said):
    rng = np.random.default_rng(3)
    stats = {
        "diverging": np.zeros((4, 200), bool),
        "reached_max_treedepth": np.zeros((4, 200), bool),
        flag: np.ones((4, 200), bool),
    }
    d = diagnose({"x": _mixed(rng)}, stats)
    assert getattr(d, flag) and len(d.notes) == 1 and said in d.notes[0]


def test_draws_at_the_maximum_tree_depth_are_noted_not_failed():
    # A cut trajectory is still a valid transition; its cost shows in the ESS, which is checked.
    capped = dataclasses.replace(HEALTHY, n_max_treedepth=8)
    assert capped.ok and capped.problems == []
    assert "8 at max tree depth" in str(capped) and str(capped).endswith("[ok]")
    assert len(capped.notes) == 1 and "8 draws hit the maximum tree depth" in capped.notes[0]
    slow = dataclasses.replace(capped, min_ess_bulk=150.0)  # the cost, where it matters
    assert not slow.ok and "too few effective draws" in slow.problems[0]
    # The retry's note comes first, then the tree depth's.
    retried = dataclasses.replace(capped, retried=True, retry_kept=True)
    assert "sampled again" in retried.notes[0] and "tree depth" in retried.notes[1]
    assert HEALTHY.notes == []


def test_advice_after_a_careful_retry_does_not_repeat_what_the_retry_did():
    first = dataclasses.replace(HEALTHY, max_rhat=1.02, n_divergent=4)
    assert "try target_accept=0.95" in " ".join(first.problems)
    assert "try more warmup" in " ".join(first.problems)
    after = dataclasses.replace(first, retried=True)
    said = " ".join(after.problems)
    assert "try target_accept=0.95" not in said and "try more warmup" not in said
    assert said.count("even sampled again with twice the warmup and target acceptance 0.95") == 2


def test_an_unhealthy_gp_module_makes_the_fit_unhealthy(synthetic_runs):
    # A fit keeps whichever GP run it chose with that run's draws; its diagnostics run over every
    # sampled parameter, the GP's included, so a stuck GP amplitude fails R-hat and ESS, the
    # fit warns (sb.fit calls warn_if_unhealthy) and `scalebayes fit --strict` exits 1 (it
    # returns 1 whenever fit.diagnostics.ok is False; tests/test_cli.py checks that path).
    rng = np.random.default_rng(2)
    law = sb.load_law("chinchilla")
    likelihood = sb.Likelihood(discrepancy="gp")
    values = {**EPOCH_CHINCHILLA, "sigma": 0.01}
    values.update({n: 0.01 for n in model_param_names(law, likelihood) if n not in values})
    draws = jittered_draws(values, rel_sd=0.01, chains=CHAINS, draws=DRAWS, seed=3)
    runs = synthetic_runs  # the session's GP fit's table: its reference programs are compiled
    healthy = fit_from_draws(law, runs, draws, likelihood=likelihood)
    assert healthy.diagnostics.max_rhat < 1.01, healthy.diagnostics
    draws["gp_amplitude"] = 0.01 * np.exp(_stuck(rng))
    fit = fit_from_draws(law, runs, draws, likelihood=likelihood)
    assert not fit.diagnostics.ok and fit.diagnostics.max_rhat > 1.1, fit.diagnostics
    assert "R-hat" in fit.diagnostics.problems[0]
    assert "CHECK" in str(fit.diagnostics)
    with pytest.warns(ConvergenceWarning, match="R-hat"):
        warn_if_unhealthy(fit.diagnostics)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_unhealthy(healthy.diagnostics)
