"""Groups: loading group columns, the pooling component, the grouped model, decisions per group."""

from __future__ import annotations

import functools
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import scalebayes as sb
from scalebayes.groups.fitting import by_group, grouped_data, strong_groups
from scalebayes.groups.pooling import Pooling, grouped_model
from scalebayes.groups.select import select_group
from scalebayes.likelihood import Likelihood
from scalebayes.model import find_centrings, model_data, numpyro_model
from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate_groups

ALL_SHARED = {n: "shared" for n in ("E", "A", "alpha", "B", "beta", "sigma")}


@pytest.fixture(scope="module")
def two_groups():
    design = isoflop_design([1e19, 1e20, 1e21], points_per_budget=5)
    return simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, {"alpha": 0.1, "E": 0.1}, [design, design], seed=1
    )


def test_load_runs_joins_group_columns(tmp_path):
    table = pd.DataFrame(
        {
            "params": [1e8, 2e8, 1e8],
            "tokens": [2e9, 4e9, 2e9],
            "loss": [3.1, 3.0, 3.2],
            "dataset": ["dclm", "dclm", "comma"],
            "eval": ["a", "b", "a"],
        }
    )
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    one = sb.load_runs(path, group="dataset")
    assert list(one.group) == ["dclm", "dclm", "comma"]
    both = sb.load_runs(path, group=["dataset", "eval"])
    assert list(both.group) == ["dclm/a", "dclm/b", "comma/a"]
    assert both.column_map["group"] == "dataset/eval"
    with pytest.raises(sb.RunsFileError, match=r"group column\(s\) \['mix'\] not found"):
        sb.load_runs(path, group=["dataset", "mix"])


def test_fit_groups_refuses_before_sampling(two_groups):
    runs, _ = two_groups
    plain = sb.load_runs(runs.subset(runs.group == "g0").table.drop(columns="group"))
    with pytest.raises(sb.ScalebayesError, match="no group column"):
        sb.fit_groups(plain)
    with pytest.raises(sb.ScalebayesError, match="one group"):
        sb.fit_groups(runs.subset(runs.group == "g0"))
    with pytest.raises(sb.ScalebayesError, match="sampled apart from the law"):
        sb.fit_groups(runs, likelihood=Likelihood(discrepancy="gp"))


def test_pooling_checks_its_modes():
    law, likelihood = sb.load_law("chinchilla"), Likelihood(discrepancy="none")
    with pytest.raises(sb.ScalebayesError, match="expected one of"):
        Pooling(modes={"alpha": "partial"})
    with pytest.raises(sb.ScalebayesError, match=r"names \['gamma'\] unknown"):
        Pooling(modes={"gamma": "shared"}).plan(law, likelihood, (True, True))
    # A pooled coefficient needs its exponent to have a population value.
    with pytest.raises(sb.ScalebayesError, match="A is pooled but"):
        Pooling(modes={"alpha": "separate"}).plan(law, likelihood, (True, True))
    plan = Pooling().plan(law, likelihood, (True, False))
    assert plan.modes() == {n: "pooled" for n in ("E", "A", "alpha", "B", "beta", "sigma")}
    # By default the law's parameters, in groups with strong data, are centred; the noise not.
    assert plan.centred == (True, False)
    assert plan.centred_params == ("E", "A", "alpha", "B", "beta")
    floor = Pooling(centred="floor").plan(law, likelihood, (True, False))
    assert floor.centred_params == ("E",)
    # The spreads' default priors keep away from 0 (no funnel neck at spread 0).
    for p in plan.params:
        assert p.spread.family == "Gamma" and float(p.spread.kwargs["concentration"]) > 1
    assert Pooling(centred=False).plan(law, likelihood, (True, False)).centred == (False, False)
    auto = Pooling(centred="auto").plan(law, likelihood, (True, False))
    assert auto.centred == (True, False)
    assert plan.sites()["_z_alpha"][1] == (2,)
    # Weak groups are partly centred under the automatic choices, not when the user says.
    assert plan.weak_centring == pytest.approx(0.7)
    assert Pooling(centred=False).plan(law, likelihood, (True, False)).weak_centring == 0.0
    with pytest.raises(sb.ScalebayesError, match=r"weak_centring=1\.5"):
        Pooling(weak_centring=1.5)


def test_all_shared_is_exactly_the_single_law(two_groups):
    """With every parameter shared, the grouped model's density is the single fit's, to rounding.

    Same site names, same priors, same reference point: any slip in the grouped model's
    layout or prior factors shows up as a difference far above 1e-9. The groups are of unequal
    size (g1 loses four runs), so the padding of the shorter group must count for nothing.
    """
    from numpyro.infer.util import potential_energy

    runs, _ = two_groups
    runs = runs.subset(np.arange(len(runs)) < len(runs) - 4)
    assert len(set(np.bincount(pd.factorize(runs.group)[0]))) == 2  # unequal groups
    law = sb.load_law("chinchilla")
    likelihood = Likelihood(discrepancy="none").for_law(law)
    plan = Pooling(modes=ALL_SHARED).plan(law, likelihood, strong_groups(runs, ("g0", "g1")))
    grouped = by_group(grouped_data(law, likelihood, runs, ("g0", "g1")), 2)
    single = model_data(law, runs, likelihood)
    point = {"_log_E_term": jnp.log(1.9), "alpha": jnp.log(0.3), "beta": jnp.log(0.4),
             "_log_A_term": -0.2, "_log_B_term": -0.9, "sigma": jnp.log(0.02)}  # fmt: skip
    centrings = find_centrings(law)
    want = potential_energy(
        functools.partial(numpyro_model, law, likelihood, centrings), (single,), {}, point
    )
    got = potential_energy(
        functools.partial(grouped_model, law, likelihood, plan), (grouped,), {}, point
    )
    assert float(got) == pytest.approx(float(want), rel=1e-9)


def test_population_prior_of_a_pooled_term_leaves_the_exponent_alone(two_groups):
    """A pooled A's population prior is on its term at the runs' centre, not on A.

    On A itself (LogNormal(5, 1.5)), with the term pinned by the data, it was a prior on the
    population alpha: log A = term + alpha log N_ref, so moving alpha from 0.41 to 0.66 moved
    log A by ~5 and the prior factor by ~10 nats (Marin's population alpha sat at 0.41, below
    every group's 0.65-0.68). With alpha shared, A's prior is the law's (a single fit's).
    """
    from numpyro import handlers

    runs, _ = two_groups
    law = sb.load_law("chinchilla")
    likelihood = Likelihood(discrepancy="none").for_law(law)
    data = by_group(grouped_data(law, likelihood, runs, ("g0", "g1")), 2)

    def prior_factor(modes, alpha):
        plan = Pooling(modes=modes).plan(law, likelihood, (False, False))
        point = {  # constrained values: priors' medians, the terms' logs -1, the given alpha
            site: jnp.full(shape, -1.0 if prior is None else prior.median())
            for site, (prior, shape) in plan.sites().items()
        }
        point["alpha"] = jnp.asarray(alpha)
        model = handlers.substitute(functools.partial(grouped_model, law, likelihood, plan), point)
        trace = handlers.trace(model).get_trace(data)
        return float(trace["_prior_A"]["fn"].log_factor)

    assert prior_factor({}, 0.41) == pytest.approx(prior_factor({}, 0.66), abs=1e-6)
    shared = {"alpha": "shared"}
    assert abs(prior_factor(shared, 0.41) - prior_factor(shared, 0.66)) > 1.0


def test_new_group_draws_from_the_population():
    law, likelihood = sb.load_law("chinchilla"), Likelihood(discrepancy="none")
    plan = Pooling(modes={"beta": "shared"}).plan(law, likelihood, (False, False, False))
    shape = (2, 4000)
    posterior = {n: np.full(shape, v) for n, v in EPOCH_CHINCHILLA.items()}
    posterior |= {f"{n}_spread": np.full(shape, 0.2) for n in ("E", "A", "alpha", "B", "sigma")}
    posterior["sigma"] = np.full(shape, 0.01)
    ref = {"N": jnp.log(1e9), "D": jnp.log(2e10)}
    new = plan.new_group(law, posterior, ref, seed=0)
    assert np.all(new["beta"] == EPOCH_CHINCHILLA["beta"])  # shared: the population value
    # A is pooled as its term at the reference point: log A - alpha * log N_ref.
    term = np.log(new["A"]) - new["alpha"] * float(ref["N"])
    new["A_term"] = np.exp(term)
    population = {**EPOCH_CHINCHILLA}
    population["A_term"] = np.exp(np.log(population["A"]) - population["alpha"] * float(ref["N"]))
    for name in ("alpha", "A_term", "E"):
        logs = np.log(new[name] / population[name]).ravel()
        # 8000 draws of Normal(0, 0.2): the sd's standard error is 0.2 / sqrt(2 * 8000) = 0.0016.
        assert np.std(logs) == pytest.approx(0.2, abs=0.01)
        assert abs(np.mean(logs)) < 0.01
    separate = Pooling(modes={"E": "separate"}).plan(law, likelihood, (False, False))
    with pytest.raises(sb.ScalebayesError, match=r"no value for \['E'\]"):
        separate.new_group(law, posterior, ref, seed=0)


def test_select_group_on_plain_fits():
    marker = object()
    assert select_group(marker, None) is marker
    with pytest.raises(sb.ScalebayesError, match="not a grouped fit"):
        select_group(marker, "dclm")


@pytest.mark.slow
def test_groups_recover_known_truth():
    """Four ladders with exponents and E spread around a population: the fit holds the truth.

    Each group: 4 budgets x 6 runs, 1 % noise; the truth's log-scale spread is 0.1 for alpha and
    E; A, B, beta the same in every group. Margins: with four groups each 90 % interval misses
    with probability 0.1, so "at least 3 of 4" fails by chance with probability 0.05 (binomial);
    99 % intervals for all four fail with probability 0.04. The population alpha's 90 %
    interval is asked to hold the population value.
    """
    designs = [isoflop_design([1e18, 1e19, 1e20, 1e21], points_per_budget=6, span=20)] * 4
    runs, truths = simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, {"alpha": 0.1, "E": 0.1}, designs, seed=3
    )
    # B and beta are the same in every group, so is B's term: shared. A is too, but its term at
    # the runs' centre moves with alpha: pooled (the default).
    modes = {"B": "shared", "beta": "shared", "sigma": "shared"}
    # The truth is the exact law, and this checks the pooling's recovery of it: the plain law.
    # (The default shared quadratic, a nuisance here, mixed slower: bulk ESS 78-103 of 1000
    # draws; benchmarks/hierarchy_truth.py measures the default's coverage.)
    plain = Likelihood(discrepancy="none")
    fit = sb.fit_groups(runs, pooling=Pooling(modes=modes), likelihood=plain, chains=2,
                        warmup=500, draws=500)  # fmt: skip
    d = fit.diagnostics
    # Margins: 2 chains x 500 draws; a broken fit reads R-hat > 1.2 and ESS < 50.
    assert d.max_rhat < 1.1 and d.min_ess_bulk > 100 and d.n_divergent <= 20, d
    alpha = fit.posterior["alpha_group"].to_numpy().reshape(-1, 4)
    truth = np.array([t["alpha"] for t in truths])
    lo90, hi90 = np.quantile(alpha, [0.05, 0.95], axis=0)
    lo99, hi99 = np.quantile(alpha, [0.005, 0.995], axis=0)
    assert np.sum((lo90 <= truth) & (truth <= hi90)) >= 3, (lo90, hi90, truth)
    assert np.all((lo99 <= truth) & (truth <= hi99)), (lo99, hi99, truth)
    population = np.quantile(fit.posterior["alpha"].to_numpy(), [0.05, 0.95])
    assert population[0] <= EPOCH_CHINCHILLA["alpha"] <= population[1], population
    # Decisions per group and for a new group run on the same posterior.
    mine = sb.predict(fit, N=7e10, D=1.4e12, group="g0").loss
    new = sb.predict(fit, N=7e10, D=1.4e12, group="new").loss
    assert float(new.std()) > float(mine.std())  # a new ladder is less known than a fitted one
    with pytest.raises(sb.ScalebayesError, match="needs group="):
        sb.predict(fit, N=7e10, D=1.4e12)
    text = str(fit)
    assert "per group" in text and "group g3: 24 runs" in text
    # Its health as a single fit's: the line, then any warning and note (continued, retried).
    assert text.endswith("\n".join(d.lines()))


def test_complete_ladders_are_strong_groups_and_a_cut_one_is_weak():
    """What the geometry tests below rest on, without sampling: which groups are centred.

    Complete ladders (5 budgets over two decades, 30 runs) are strong data, so the default
    pooling centres their law; the third ladder cut to its 3 cheapest budgets (0.67 decades,
    24 runs) is weak, and partly centred.
    """
    designs = [isoflop_design([1e18, 3e18, 1e19, 3e19, 1e20], points_per_budget=6, span=20)] * 3
    spreads = {"E": 0.05, "alpha": 0.03, "beta": 0.03, "A": 0.05, "B": 0.05}
    runs, _ = simulate_groups("chinchilla", EPOCH_CHINCHILLA, spreads, designs, seed=5)
    assert strong_groups(runs, ["g0", "g1", "g2"]) == (True, True, True)
    full = isoflop_design(np.geomspace(1e18, 1e20, 7), points_per_budget=8, span=20)
    runs, _ = simulate_groups("chinchilla", EPOCH_CHINCHILLA, spreads, [full] * 3, seed=0)
    runs = runs.subset(np.asarray((runs.group != "g2") | (runs.C <= 1.01 * 10**18.67)))
    assert strong_groups(runs, ["g0", "g1", "g2"]) == (True, True, False)
    law, likelihood = sb.load_law("chinchilla"), Likelihood()
    plan = Pooling().plan(law, likelihood, (True, True, False))
    assert plan.centred == (True, True, False) and plan.weak_centring == pytest.approx(0.7)


# Slow: each samples a grouped model (~8 s compiling, 5-20 s sampling on 2 cores); the test
# above checks the plan they sample, in milliseconds.
@pytest.mark.slow
def test_complete_ladders_are_sampled_without_the_ridge():
    """The default centring keeps a grouped fit of complete ladders off the maximum tree depth.

    Three complete ladders (5 budgets x 6 runs over two decades, 1 % noise: strong groups),
    every law parameter spread 3-5 % across them, the default pooling and discrepancy. With
    only E centred (the default before) the same fit took 482 leapfrog steps per draw and 98 of
    600 draws hit the maximum depth (non-centred, the combinations a ladder pins are ridges);
    with the law centred, 39 steps and none. 150 steps per draw and 10 such draws are margins of
    ~4x and ~10x either way, far beyond what the CPU's floating point moves.
    """
    designs = [isoflop_design([1e18, 3e18, 1e19, 3e19, 1e20], points_per_budget=6, span=20)] * 3
    spreads = {"E": 0.05, "alpha": 0.03, "beta": 0.03, "A": 0.05, "B": 0.05}
    runs, _ = simulate_groups("chinchilla", EPOCH_CHINCHILLA, spreads, designs, seed=5)
    with warnings.catch_warnings():
        # 2 x 300 draws: R-hat and ESS are not what is checked here; the geometry is.
        warnings.simplefilter("ignore", sb.ConvergenceWarning)
        fit = sb.fit_groups(runs, chains=2, draws=300, warmup=300, seed=0)
    assert fit.plan.centred == (True, True, True)
    assert fit.plan.centred_params == ("E", "A", "alpha", "B", "beta")
    stats = fit.idata["sample_stats"]
    assert float(stats["n_steps"].mean()) < 150
    assert fit.diagnostics.n_max_treedepth <= 10  # 98 of 600 with the ridge


@pytest.mark.slow
def test_a_new_ladder_is_sampled_partly_centred():
    """A ladder cut to its cheapest budgets is sampled partly centred, off the maximum depth.

    Two complete ladders and a third with only its 3 cheapest budgets (0.67 decades, 24 runs:
    a weak group), 0.3 % noise as Marin's. Non-centred in the weak group (the default before),
    its cheap runs' tight combinations were ridges: 530-642 leapfrog steps per draw and 53-197
    of 600 draws at the maximum depth (data seeds 0 and 1); partly centred (the default),
    162-209 steps and none. 400 steps and 10 draws leave margins both ways far beyond what the
    CPU's floating point moves.
    """
    full = isoflop_design(np.geomspace(1e18, 1e20, 7), points_per_budget=8, span=20)
    at = {n: float(np.log(full[n]).mean()) for n in ("N", "D")}
    spreads = {"E": 0.05, "alpha": 0.05, "beta": 0.05, "A": 0.1, "B": 0.1}
    runs, _ = simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, spreads, [full] * 3, seed=0, noise=0.003, terms_at=at
    )
    runs = runs.subset(np.asarray((runs.group != "g2") | (runs.C <= 1.01 * 10**18.67)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sb.ConvergenceWarning)  # 2 x 300: the geometry is checked
        fit = sb.fit_groups(runs, chains=2, draws=300, warmup=300, seed=0)
    assert fit.plan.centred == (True, True, False)
    assert fit.plan.weak_centring == pytest.approx(0.7)
    assert float(fit.idata["sample_stats"]["n_steps"].mean()) < 400
    assert fit.diagnostics.n_max_treedepth <= 10


@pytest.fixture(scope="module")
def groups_csv(two_groups, tmp_path_factory):
    runs, _ = two_groups
    path = tmp_path_factory.mktemp("groups") / "runs.csv"
    runs.table[["N", "D", "loss", "group"]].rename(columns={"group": "mix"}).to_csv(
        path, index=False
    )
    return path


def test_cli_group_refusals_come_before_work(groups_csv, capsys):
    from scalebayes.cli import main

    assert main(["fit", str(groups_csv), "--pool", "alpha=shared"]) == 2
    assert "--pool applies to grouped fits" in capsys.readouterr().err
    assert main(["fit", str(groups_csv), "--group", "mix", "--out", "x.txt"]) == 2
    assert "--out x.txt: expected a file name ending in" in capsys.readouterr().err
    assert main(["fit", str(groups_csv), "--group", "dataset"]) == 2
    assert "group column(s) ['dataset'] not found" in capsys.readouterr().err


def test_cli_new_ladder_backtest_refuses_before_work(groups_csv, capsys):
    from scalebayes.cli import main

    head = ["backtest", str(groups_csv), "--column", "group=mix"]
    assert main([*head, "--keep-budgets", "2"]) == 2
    assert "--keep-budgets needs --group NAME" in capsys.readouterr().err
    assert main([*head, "--group", "g0", "--holdout-top", "1"]) == 2
    assert "not with --holdout-top" in capsys.readouterr().err
    assert main([*head, "--group", "g9"]) == 2
    assert "group 'g9' not in" in capsys.readouterr().err
    assert main([*head, "--group", "g0", "--keep-budgets", "3"]) == 2
    assert "has 3 budgets; expected 1 to 2" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_fit_group_saves_and_decides(groups_csv, tmp_path, capsys):
    """fit --group --out, then show and predict read the file back: the whole CLI round trip."""
    from scalebayes.cli import main

    out = tmp_path / "groups.nc"
    args = ["--chains", "2", "--draws", "200", "--warmup", "200", "--quiet", "--seed", "1"]
    pool = ["--group", "mix", "--pool", "beta=shared", "--out", str(out)]
    assert main(["fit", str(groups_csv), *pool, *args]) == 0
    printed = capsys.readouterr().out
    for needle in ("group g0: 15 runs", "group g1: 15 runs", "per group", "shared", "diagnostics:",
                   f"saved to {out}"):  # fmt: skip
        assert needle in printed
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    # The same tables as the fit printed (from the file, not the sampler's memory).
    assert shown.split("Grouped fit")[1] == printed.split("Grouped fit")[1].split("saved to")[0]
    assert main(["predict", str(out), "--N", "7e10", "--D", "1.4e12", "--group", "new"]) == 0
    assert "a new group (not yet run)" in capsys.readouterr().out


def test_per_group_table_fits_a_terminal_with_many_long_group_names():
    from scalebayes.groups.result import _per_group_text

    groups = tuple(f"a_rather_long_experiment_name_{i:02d}" for i in range(8))
    names = ("E", "A", "alpha", "B", "beta", "sigma")
    index = pd.MultiIndex.from_product([groups, names], names=["group", "parameter"])
    table = pd.DataFrame({"median": 1234.5678, "lower": 123.45678, "upper": 12345.678}, index)
    text = _per_group_text(table, groups, width=120)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    headers = [line.split() for line in lines if line.strip().startswith("group")]
    assert [name for header in headers for name in header[1:]] == list(names)  # each once
    for label in groups:  # every group on a row of each block
        assert sum(line.split()[0] == label for line in lines if line.strip()) == len(headers)
    few = _per_group_text(table.loc[list(groups[:2])], groups[:2], width=120)
    assert few.splitlines()[0].split() == ["parameter", *groups[:2]]  # side by side where it fits
