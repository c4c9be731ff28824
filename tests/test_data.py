"""Loading runs: column recognition, derivation of C or D, and errors that point at the cell."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalebayes.columns import ALIASES, CANONICAL, normalise
from scalebayes.data import Runs, load_runs
from scalebayes.errors import DataWarning, RunsFileError, ScalebayesError

HERE = Path(__file__).parent
BAD = HERE / "data" / "bad_runs"
GOOD = HERE / "data" / "good_runs"
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _frame(**extra: object) -> pd.DataFrame:
    """Three good runs (N, D, loss) plus any extra columns."""
    frame = pd.DataFrame(
        {"params": [1e8, 2e8, 4e8], "tokens": [2e9, 4e9, 8e9], "loss": [3.1, 2.9, 2.7]}
    )
    for name, values in extra.items():
        frame[name] = values
    return frame


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} not present (shared data lives beside the checkout)")
    return path


def _starts(path: Path) -> str:
    """Pattern for the start of a message about ``path``."""
    return f"^{re.escape(str(path))}: "


# --- bad files: every error names the file, the line and the column as the user wrote it ---


@pytest.mark.parametrize(
    ("name", "line", "column", "problem"),
    [
        ("not_a_number.csv", 3, "tokens", "not a number"),
        ("thousands_separator.csv", 4, "params", "not a number"),
        ("units_suffix.csv", 3, "params", "not a number"),
        ("blank_line_then_bad.csv", 4, "loss", "not a number"),
        ("empty_cell.csv", 3, "loss", r"missing value \(empty or NaN\)"),
        ("nan.csv", 2, "loss", "missing value"),
        ("na_text.csv", 3, "loss", "missing value"),
        # A quoted cell spanning lines, then a blank line: the bad cell is on the file's line 6.
        ("multiline_then_missing.csv", 6, "loss", "missing value"),
        ("inf.csv", 4, "tokens", "infinite value"),
        ("zero.csv", 3, "params", r"must be positive \(> 0\)"),
        ("negative.csv", 4, "loss", r"must be positive \(> 0\)"),
        ("zero_weight.csv", 3, "weight", r"must be positive \(> 0\)"),
        ("empty_group.csv", 3, "group", "group label is empty"),
        ("inconsistent_c.csv", 3, "flops", r"C differs from 6 \* N \* D by more than 10%"),
    ],
)
def test_bad_cell_names_file_line_and_column(name, line, column, problem):
    path = BAD / name
    with pytest.raises(
        RunsFileError, match=rf"{_starts(path)}line {line}, column '{column}': {problem}"
    ) as info:
        load_runs(path)
    assert info.value.source == str(path)
    assert info.value.column == column
    assert info.value.rows == [line]


def test_every_bad_row_is_named(tmp_path):
    path = _write(tmp_path / "runs.csv", "N,D,loss\n1e8,x,3\n2e8,4e9,2.9\n4e8,1e9 tokens,2.7\n")
    with pytest.raises(RunsFileError, match=r"runs\.csv: lines 2, 4, column 'D': not a number"):
        load_runs(path)


def test_many_bad_rows_are_capped_at_ten(tmp_path):
    path = _write(tmp_path / "runs.csv", "N,D,loss\n" + "1e8,?,3.1\n" * 15)
    with pytest.raises(RunsFileError, match=r"lines 2, 3, .*, 11 and 5 more, column 'D'") as info:
        load_runs(path)
    assert info.value.rows == list(range(2, 17))


@pytest.mark.parametrize(
    "cell", ["", "nan", "NaN", "NA", "n/a", "null", "None", "#N/A", "  "], ids=repr
)
def test_spellings_of_missing(tmp_path, cell):
    path = _write(tmp_path / "runs.csv", f"N,D,loss\n1e8,2e9,3.1\n2e8,4e9,{cell}\n")
    with pytest.raises(RunsFileError, match=r"line 3, column 'loss': missing value .*diverged"):
        load_runs(path)


@pytest.mark.parametrize(
    "cell",
    ["1,000", "1 000", "1_000", "7 GB", "7Bn", "1e3K", "7G", "3%", "$3", "0x10", "true"],
    ids=repr,
)
def test_not_plain_numbers_are_errors(tmp_path, cell):
    path = _write(tmp_path / "runs.csv", f'N,D,loss\n1e8,2e9,3.1\n"{cell}",4e9,2.9\n')
    with pytest.raises(RunsFileError, match=r"line 3, column 'N': not a number"):
        load_runs(path)


@pytest.mark.parametrize(
    ("cell", "value"),
    [("70B", 7e10), ("2.8B", 2.8e9), ("1.4T", 1.4e12), ("17m", 1.7e7), ("400 M", 4e8),
     ("125k", 1.25e5), (".5b", 5e8)],
)  # fmt: skip
def test_counts_with_a_suffix(tmp_path, cell, value):
    # Papers and model cards write sizes so: read exactly the number written.
    path = _write(tmp_path / "runs.csv", f"N,D,loss\n1e8,2e9,3.1\n{cell},{cell},2.9\n")
    runs = load_runs(path)
    assert runs.N[1] == value and runs.D[1] == value


@pytest.mark.parametrize(
    ("header", "factors"),
    [("Parameters (M),Tokens (B),loss", (1e6, 1e9)), ("params_B,tokens_T,loss", (1e9, 1e12)),
     ("N [in millions],D (billions),val/loss", (1e6, 1e9)), ("Model Size (K),tokens (M),loss", (1e3, 1e6))],
)  # fmt: skip
def test_a_unit_in_a_column_name_is_counted_in(tmp_path, header, factors):
    # Tables in papers give parameters in millions and tokens in billions in the header.
    path = _write(tmp_path / "runs.csv", f"{header}\n100,2,3.1\n200,4,2.9\n")
    runs = load_runs(path)
    np.testing.assert_allclose(runs.N, np.array([100, 200]) * factors[0], rtol=1e-15)
    np.testing.assert_allclose(runs.D, np.array([2, 4]) * factors[1], rtol=1e-15)
    scaled = [f"x 1e{int(np.log10(f))}" for f in factors if f != 1]
    assert all(text in str(runs) for text in scaled), str(runs)


def test_a_plain_unit_in_brackets_is_read_as_it_is(tmp_path):
    header = "Model size (params),Tokens (count),Compute (FLOPs),Loss (nats)"
    path = _write(tmp_path / "runs.csv", f"{header}\n1e8,2e9,1.2e18,3.1\n2e8,4e9,4.8e18,2.9\n")
    runs = load_runs(path)
    assert runs.column_map == {"N": "Model size (params)", "D": "Tokens (count)",
                               "C": "Compute (FLOPs)", "loss": "Loss (nats)"}  # fmt: skip
    np.testing.assert_array_equal(runs.C, [1.2e18, 4.8e18])
    assert "; read" not in str(runs)  # nothing scaled
    # Kaplan et al.'s columns: which count it is in brackets, compute in PF-days.
    header = "Parameters (non-embedding),Compute (PF-days),Loss (validation)"
    path = _write(tmp_path / "kaplan.csv", f"{header}\n1e8,0.01,3.1\n2e8,0.04,2.9\n")
    runs = load_runs(path)
    np.testing.assert_allclose(runs.C, [8.64e17, 3.456e18])
    assert runs.column_map["N"] == "Parameters (non-embedding)"
    # Two counts of one quantity are a choice the user makes.
    path = _write(tmp_path / "two.csv", "Parameters (total),Parameters (non-embedding),D,loss\n"
                  "1.2e8,1e8,2e9,3.1\n2.2e8,2e8,4e9,2.9\n")  # fmt: skip
    with pytest.raises(RunsFileError, match="could all be N"):
        load_runs(path)
    # Bits are not nats: a loss in bits is read times ln 2, and says so.
    for header in ("Loss (bits)", "val_loss [bits/token]", "loss (bits per byte)"):
        path = _write(tmp_path / "bits.csv", f"N,D,{header}\n1e8,2e9,3.1\n2e8,4e9,2.9\n")
        runs = load_runs(path)
        np.testing.assert_allclose(runs.loss, np.log(2.0) * np.array([3.1, 2.9]), rtol=1e-15)
        assert f"loss = ln 2 x {header!r} (bits to nats)" in str(runs)
    # Bits note a loss, not a count.
    path = _write(tmp_path / "nbits.csv", "N (bits),D,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n")
    with pytest.raises(RunsFileError, match="no column for N"):
        load_runs(path)


def test_compute_in_pf_days_or_powers_of_ten(tmp_path):
    # Kaplan et al. count compute in petaflop/s-days: 1e15 FLOP/s for a day.
    path = _write(tmp_path / "runs.csv", "N,compute (PF-days),loss\n1e8,1,3.1\n2e8,4,2.9\n")
    runs = load_runs(path)
    np.testing.assert_allclose(runs.C, [8.64e19, 4 * 8.64e19])
    assert "'compute (PF-days)' x 8.64e19 (PF-days)" in str(runs)
    for header in ("FLOPs (1e18)", "FLOPs [x10^18]", "C (×1e18)"):
        path = _write(tmp_path / "runs.csv", f"N,{header},loss\n1e8,1.2,3.1\n2e8,4.8,2.9\n")
        np.testing.assert_allclose(load_runs(path).C, [1.2e18, 4.8e18])
    # FLOPs with an SI prefix, as W&B logs them (Marin's throughput/total_gflops).
    path = _write(tmp_path / "runs.csv", "N,GFLOPs,loss\n1e8,1.2e9,3.1\n2e8,4.8e9,2.9\n")
    runs = load_runs(path)
    np.testing.assert_allclose(runs.C, [1.2e18, 4.8e18])
    assert "'GFLOPs' x 1e9 (GFLOPs)" in str(runs)
    path = _write(
        tmp_path / "runs.csv", "N,throughput/total_gflops,loss\n1e8,1.2e9,3.1\n2e8,4.8e9,2.9\n"
    )
    runs = load_runs(path, columns={"C": "throughput/total_gflops"})
    np.testing.assert_allclose(runs.C, [1.2e18, 4.8e18])
    # Days are no unit of parameters: the column is not read as N.
    path = _write(tmp_path / "runs.csv", "params (PF-days),tokens,loss\n1,2e9,3.1\n2,4e9,2.9\n")
    with pytest.raises(RunsFileError, match="no column for N"):
        load_runs(path)


def test_a_mapped_column_name_counts_in_its_unit_too(tmp_path):
    path = _write(tmp_path / "runs.csv", "non-emb (M),tokens,loss\n100,2e9,3.1\n200,4e9,2.9\n")
    runs = load_runs(path, columns={"N": "non-emb (M)"})
    np.testing.assert_allclose(runs.N, [1e8, 2e8])
    # An unknown word in brackets is no unit: read as written.
    path = _write(tmp_path / "runs.csv", "params (total),tokens,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n")
    np.testing.assert_allclose(load_runs(path, columns={"N": "params (total)"}).N, [1e8, 2e8])


def test_a_unit_in_the_name_and_a_suffix_in_the_cell_is_an_error(tmp_path):
    # "70B" in a column of billions: 70 billion or 70 billion billion? Neither is guessed.
    path = _write(tmp_path / "runs.csv", "Params (B),tokens,loss\n0.1,2e9,3.1\n70B,4e9,2.9\n")
    with pytest.raises(RunsFileError, match=r"line 3, column 'Params \(B\)': the column's name "
                       r"gives the unit \(B\)"):  # fmt: skip
        load_runs(path)


def test_where_reads_one_experiment_of_a_shared_file_and_keeps_its_lines(tmp_path):
    # Open-Athena's table holds 8 experiments; one is fitted at a time without editing the file.
    text = ("experiment,N,D,budget,loss,outlier\n"
            "a,1e8,2e9,1.2e18,3.1,False\nb,1e8,2e9,1.2e18,3.0,False\n"
            "b,2e8,4e9,4.8e18,2.9,True\nb,4e8,8e9,1.92e19,2.8,false\nc,4e8,8e9,1.92e19,x,False\n")  # fmt: skip
    path = _write(tmp_path / "runs.csv", text)
    runs = load_runs(path, where={"experiment": "b", "outlier": "False"})
    np.testing.assert_array_equal(runs.N, [1e8, 4e8])
    assert runs.rows == (3, 5) and "where experiment=b and outlier=False" in str(runs)
    # Several values of one column are alternatives; numbers match by value; c's bad cell unread.
    with pytest.warns(DataWarning, match="duplicate runs"):  # a's and b's first run: same N, D
        runs = load_runs(path, where={"experiment": ["a", "b"], "budget": "1.2e+18"})
    assert runs.rows == (2, 3)
    with pytest.raises(RunsFileError, match=r"where: no row has experiment = 'd'; its values are "
                       r"'a', 'b', 'c'"):  # fmt: skip
        load_runs(path, where={"experiment": "d"})
    with pytest.raises(RunsFileError, match=r"where: column 'run' not found"):
        load_runs(path, where={"run": "a"})
    # Errors in the rows read name their lines in the file.
    with pytest.raises(RunsFileError, match=r"line 6, column 'loss': not a number"):
        load_runs(path, where={"experiment": "c"})


def test_where_on_the_command_line(tmp_path):
    from scalebayes.cli import build_parser
    from scalebayes.cli._common import read_runs

    path = _write(tmp_path / "runs.csv", "experiment,N,D,loss\na,1e8,2e9,3.1\nb,1e8,2e9,3.0\n"
                  "b,2e8,4e9,2.9\nb,4e8,8e9,2.8\n")  # fmt: skip
    args = build_parser().parse_args(["fit", str(path), "--where", "experiment=b"])
    assert len(read_runs(args, str(path))) == 3
    args = build_parser().parse_args(["fit", str(path), "--where", "experiment"])
    with pytest.raises(ScalebayesError, match="--where 'experiment': expected COLUMN=VALUE"):
        read_runs(args, str(path))


def test_a_perplexity_is_read_as_its_log_when_there_is_no_loss(tmp_path):
    # Perplexity = exp(loss in nats per token), as older papers and eval harnesses report it.
    path = _write(tmp_path / "runs.csv", "params,tokens,val_ppl\n1e8,2e9,22.2\n2e8,4e9,18.2\n")
    runs = load_runs(path)
    np.testing.assert_allclose(runs.loss, np.log([22.2, 18.2]), rtol=1e-15)
    assert "loss = log('val_ppl')" in str(runs)
    # A loss column wins; a perplexity below 1 is no perplexity; two of them ask which.
    both = _write(tmp_path / "both.csv", "N,D,loss,ppl\n1e8,2e9,3.1,22.2\n2e8,4e9,2.9,18.2\n")
    np.testing.assert_array_equal(load_runs(both).loss, [3.1, 2.9])
    low = _write(tmp_path / "low.csv", "N,D,ppl\n1e8,2e9,0.9\n2e8,4e9,18.2\n")
    with pytest.raises(RunsFileError, match=r"line 2, column 'ppl': a perplexity is at least 1"):
        load_runs(low)
    two = _write(tmp_path / "two.csv", "N,D,val_ppl,test_ppl\n1e8,2e9,22,23\n2e8,4e9,18,19\n")
    with pytest.raises(RunsFileError, match=r"could all be its perplexity"):
        load_runs(two)


def test_loss_takes_no_count_suffix(tmp_path):
    path = _write(tmp_path / "runs.csv", "N,D,loss\n1e8,2e9,3.1\n2e8,4e9,2.9k\n")
    with pytest.raises(RunsFileError, match=r"line 3, column 'loss': not a number \(expected "
                       r"plain numbers such as 2\.95"):  # fmt: skip
        load_runs(path)


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "1e400"])
def test_infinite_values(tmp_path, cell):
    path = _write(tmp_path / "runs.csv", f"N,D,C,loss\n1e8,2e9,1.2e18,3.1\n2e8,4e9,{cell},2.9\n")
    with pytest.raises(RunsFileError, match=r"line 3, column 'C': infinite value"):
        load_runs(path)


def test_ragged_row():
    path = BAD / "ragged.csv"
    with pytest.raises(
        RunsFileError, match=rf"{_starts(path)}line 3: expected 3 fields as in the header"
    ) as info:
        load_runs(path)
    assert info.value.rows == [3]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("bad_quoting.csv", "line 2: not valid CSV"),
        ("not_utf8.csv", "not UTF-8 text"),
        ("header_only.csv", "the table has no runs"),
        ("empty.csv", "the file is empty"),
    ],
)
def test_unreadable_or_empty_file(name, problem):
    path = BAD / name
    with pytest.raises(RunsFileError, match=rf"{_starts(path)}{re.escape(problem)}"):
        load_runs(path)


@pytest.mark.parametrize(
    ("name", "missing", "found", "accepted"),
    [
        ("missing_loss.csv", "loss", "['params', 'tokens', 'score']", "loss: 'loss', 'val_loss'"),
        # "size" could be model or dataset size: ask rather than guess.
        ("bare_size_column.csv", "N", "['size', 'tokens', 'loss']", "N: 'N', 'model size'"),
        ("missing_d_and_c.csv", "D or C", "['params', 'loss']", "C: 'C', 'training FLOP'"),
    ],
)
def test_missing_column_lists_columns_found_and_names_accepted(name, missing, found, accepted):
    path = BAD / name
    with pytest.raises(RunsFileError, match=rf"{_starts(path)}no column for") as info:
        load_runs(path)
    message = str(info.value)
    assert f"no column for {missing};" in message
    assert f"found columns {found}" in message
    assert accepted in message
    key = missing.split()[0]
    assert f"columns={{'{key}': NAME}}" in message and f"--column {key}=NAME" in message


def test_missing_columns_suggest_the_columns_that_name_them_in_words():
    # datablations' final_losses.csv: every needed column is named with a suffix.
    frame = pd.DataFrame(
        {
            "run_key": ["a", "b"], "params_N": [1e8, 2e8], "tokens_D": [2e9, 4e9],
            "unique_tokens_U": [1e9, 1e9], "epochs": [2.0, 4.0], "flops_6ND": [1.2e18, 4.8e18],
            "val_loss_c4": [3.1, 2.9], "tokens_per_param": [20.0, 20.0],
        }
    )  # fmt: skip
    with pytest.raises(RunsFileError, match="no column for N and loss") as info:
        load_runs(frame)
    message = str(info.value)
    # "unique tokens" outranks "tokens" in unique_tokens_U; tokens_per_param names no column
    # of its own but is a candidate for D beside tokens_D, so D is offered as a choice.
    assert (
        "Your columns that look like them: N: 'params_N'; loss: 'val_loss_c4'; "
        "D: 'tokens_D' or 'tokens_per_param'; C: 'flops_6ND'; U: 'unique_tokens_U'"
    ) in message, message
    assert "--column N=params_N --column loss=val_loss_c4 --column C=flops_6ND" in message
    # Taken as suggested, the table loads.
    runs = load_runs(frame, columns={"N": "params_N", "loss": "val_loss_c4", "D": "tokens_D",
                                     "U": "unique_tokens_U"})  # fmt: skip
    assert runs.table["U"].tolist() == [1e9, 1e9]


def test_wandb_export_names_are_suggested():
    # Marin's W&B export (open-athena-isoflops/marin_raw): GFLOPs are no FLOPs, so not offered.
    frame = pd.DataFrame({"parameter_count": [1e8, 2e8], "throughput/total_tokens": [2e9, 4e9],
                          "eval/loss": [3.1, 2.9], "throughput/total_gflops": [1.2e9, 4.8e9]})  # fmt: skip
    with pytest.raises(RunsFileError) as info:
        load_runs(frame)
    # "eval/loss" is eval_loss with W&B's separator: read, not suggested.
    assert "no column for D or C" in str(info.value)
    assert "--column D=throughput/total_tokens" in str(info.value)
    assert "gflops" not in str(info.value).split("look like them")[1].split(". Recognised")[0]


@pytest.mark.parametrize("name", ["val_bpb", "paloma/c4_en/bits_per_byte", "eval_nll", "xent"])
def test_a_loss_in_other_words_is_suggested_not_read(name):
    # Bits per byte (Marin's and OLMo's evals) is a loss in other units: offered, never assumed.
    frame = pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 4e9], name: [1.1, 1.0]})
    with pytest.raises(RunsFileError, match=rf"no column for loss.*look like them: loss: '{name}' "
                       rf"\(CLI: --column loss={name}"):  # fmt: skip
        load_runs(frame)
    assert load_runs(frame, columns={"loss": name}).loss.tolist() == [1.1, 1.0]


def test_d_derived_from_c_beside_a_column_naming_tokens_warns():
    # datablations' learning curves: tokens in 'token_num' (a singular), FLOPs in 'flops'.
    frame = pd.DataFrame({"num_params": [1e8, 2e8], "token_num": [2e9, 4e9],
                          "flops": [1.2e18, 4.8e18], "loss": [3.1, 2.9]})  # fmt: skip
    with pytest.warns(DataWarning, match=r"^<DataFrame>: D derived as C / \(k N\), but "
                      r"column\(s\) 'token_num' may be D: .*--column D=token_num"):  # fmt: skip
        runs = load_runs(frame)
    assert runs.derived == ("D",)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_runs(frame, columns={"D": "token_num"})


def test_a_loss_that_rises_with_compute_warns():
    # An accuracy mapped as the loss: rank correlation +1 with C. Real tables read -0.64 to -0.98.
    n = np.geomspace(1e8, 1e10, 8)
    frame = pd.DataFrame({"N": n, "D": 20 * n, "accuracy": np.linspace(0.3, 0.7, 8)})
    with pytest.warns(DataWarning, match=r"column 'accuracy': the loss rises with compute .*"
                      r"\+1\.00.*an accuracy or a score"):  # fmt: skip
        load_runs(frame, columns={"loss": "accuracy"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_runs(frame.assign(loss=np.linspace(3.0, 2.2, 8)))  # a loss that falls is quiet


def test_no_suggestion_where_no_column_names_a_quantity():
    with pytest.raises(RunsFileError) as info:
        load_runs(pd.DataFrame({"size": [1e8], "tokens": [1e9], "score": [3.0]}))
    assert "look like" not in str(info.value)


def test_missing_several_columns_at_once():
    with pytest.raises(RunsFileError, match=r"no column for N and loss and \(D or C\)"):
        load_runs(pd.DataFrame({"x": [1.0]}))


def test_empty_dataframe():
    with pytest.raises(RunsFileError, match=r"^<DataFrame>: the table has no runs"):
        load_runs(_frame().iloc[:0])


def test_inconsistent_c_suggests_the_ways_out():
    with pytest.raises(RunsFileError) as info:
        load_runs(BAD / "inconsistent_c.csv")
    assert "cost_k=" in str(info.value) and "accept_inconsistent_c=True" in str(info.value)


def test_a_recognised_column_left_unread_is_derived_instead():
    with pytest.raises(RunsFileError, match=r"columns=\{'C': None\} \(--column C=\)"):
        load_runs(BAD / "inconsistent_c.csv")
    runs = load_runs(BAD / "inconsistent_c.csv", columns={"C": None})
    np.testing.assert_allclose(runs.C, 6 * runs.N * runs.D)
    assert runs.derived == ("C",) and "C" not in runs.column_map
    with pytest.raises(RunsFileError, match=r"no column for loss"):
        load_runs(BAD / "inconsistent_c.csv", columns={"loss": None})


def test_inconsistent_c_accepted_warns_and_keeps_c():
    path = BAD / "inconsistent_c.csv"
    with pytest.warns(DataWarning, match=r"line 3, column 'flops': .*\(kept as given\)"):
        runs = load_runs(path, accept_inconsistent_c=True)
    np.testing.assert_array_equal(runs.C, [1.2e18, 7.2e18, 1.92e19])
    np.testing.assert_array_equal(runs.D, [2e9, 4e9, 8e9])
    assert runs.derived == ()


def test_inconsistent_c_respects_cost_k_and_rtol():
    frame = _frame(flops=[8 * 1e8 * 2e9, 8 * 2e8 * 4e9, 8 * 4e8 * 8e9])
    with pytest.raises(RunsFileError, match=r"rows 0, 1, 2, column 'flops': C differs from 6"):
        load_runs(frame)
    assert load_runs(frame, cost_k=8).cost_k == 8.0
    assert len(load_runs(frame, c_rtol=0.5)) == 3


@pytest.mark.parametrize(
    ("name", "key", "both"),
    [
        ("ambiguous_n.csv", "N", ["params", "n_params"]),
        ("ambiguous_loss.csv", "loss", ["val_loss", "train_loss"]),
    ],
)
def test_two_columns_for_one_name_ask_for_explicit_mapping(name, key, both):
    path = BAD / name
    pattern = rf"{_starts(path)}columns {re.escape(str(both))} could all be {key}"
    with pytest.raises(RunsFileError, match=pattern) as info:
        load_runs(path)
    assert f"columns={{'{key}': ...}}" in str(info.value)
    assert load_runs(path, columns={key: both[1]}).column_map[key] == both[1]


def test_copies_of_one_column_leave_nothing_to_choose():
    # (Mis)Fitting's table has D and train_tokens, equal in every row: D is read, no question.
    frame = _frame().rename(columns={"tokens": "D"})
    frame.insert(0, "train_tokens", frame["D"])
    assert load_runs(frame).column_map["D"] == "D"
    frame["train_tokens"] = frame["D"] * 2  # differing columns are still a question
    with pytest.raises(RunsFileError, match="could all be D"):
        load_runs(frame)


def test_repeated_header_name_is_an_error():
    path = BAD / "repeated_header.csv"
    pattern = rf"{_starts(path)}line 1: column name\(s\) \['params'\] appear more than once"
    with pytest.raises(RunsFileError, match=pattern):
        load_runs(path)


def test_repeated_unused_header_name_is_ignored(tmp_path):
    path = _write(tmp_path / "runs.csv", "params,note,tokens,note,loss\n1e8,a,2e9,b,3.1\n")
    assert load_runs(path).column_map == {"N": "params", "D": "tokens", "loss": "loss"}


def test_repeated_unused_header_name_beside_duplicate_runs(tmp_path):
    # The duplicate-run and learning-curve checks look at unread columns: a repeated name
    # selects two of them and is skipped, not an error.
    path = _write(tmp_path / "runs.csv", "params,note,tokens,note,loss\n1e8,a,2e9,b,3.1\n"
                  "1e8,c,2e9,d,3.2\n")  # fmt: skip
    with pytest.warns(DataWarning, match="duplicate runs"):
        assert len(load_runs(path)) == 2


def test_explicit_mapping_to_missing_column():
    path = BAD / "missing_loss.csv"
    pattern = rf"{_starts(path)}column 'val loss' \(mapped to loss\) not found"
    with pytest.raises(RunsFileError, match=pattern) as info:
        load_runs(path, columns={"loss": "val loss"})
    assert "['params', 'tokens', 'score']" in str(info.value)


def test_explicit_mapping_with_unknown_canonical_name():
    with pytest.raises(RunsFileError, match=r"columns= names \['tokens'\] unknown"):
        load_runs(_frame(), columns={"tokens": "tokens"})


def test_explicit_mapping_of_one_column_twice():
    with pytest.raises(RunsFileError, match=r"columns= maps \['params'\] to more than one"):
        load_runs(_frame(), columns={"N": "params", "D": "params"})


def test_unknown_extension(tmp_path):
    path = _write(tmp_path / "runs.xlsx", "params,tokens,loss\n1e8,2e9,3.1\n")
    pattern = rf"{_starts(path)}unknown file type '\.xlsx'; expected one of \.csv, \.tsv"
    with pytest.raises(RunsFileError, match=pattern) as info:
        load_runs(path)
    assert str(info.value).endswith("save the sheet as CSV")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(RunsFileError, match=rf"{_starts(path)}no such file"):
        load_runs(path)
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(RunsFileError, match=r"folder\.csv: not a file"):
        load_runs(tmp_path / "folder.csv")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cost_k": 0}, "cost_k=0"),
        ({"cost_k": float("nan")}, "cost_k=nan"),
        ({"c_rtol": -0.1}, "c_rtol=-0.1"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ScalebayesError, match=message):
        load_runs(_frame(), **kwargs)


# --- good paths ---


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Model Size,Training FLOP,loss", {"N": "Model Size", "C": "Training FLOP"}),
        ("params,tokens,val_loss", {"N": "params", "D": "tokens", "loss": "val_loss"}),
        ("PARAMS,Num_Tokens,Val Loss", {"N": "PARAMS", "D": "Num_Tokens", "loss": "Val Loss"}),
        ("n_params,n_tokens,eval_loss", {"N": "n_params", "D": "n_tokens"}),
        ("num_params,training tokens,final_loss", {"N": "num_params", "D": "training tokens"}),
        ("parameters,D,validation loss", {"N": "parameters", "loss": "validation loss"}),
        ("N,training flops,Loss", {"C": "training flops", "loss": "Loss"}),
        ("Parameter-Count,FLOPs,loss", {"N": "Parameter-Count", "C": "FLOPs"}),
        ("n,compute,final-loss", {"N": "n", "C": "compute", "loss": "final-loss"}),
        (
            "Non-Embedding Parameters,total_tokens,lm loss",
            {"N": "Non-Embedding Parameters", "D": "total_tokens", "loss": "lm loss"},
        ),
    ],
)
def test_aliases(tmp_path, header, expected):
    uses_c = expected.get("C") is not None
    second = ("1.2e18", "4.8e18") if uses_c else ("2e9", "4e9")
    path = _write(tmp_path / "runs.csv", f"{header}\n1e8,{second[0]},3.1\n2e8,{second[1]},2.9\n")
    runs = load_runs(path)
    assert len(runs) == 2
    for canonical, column in expected.items():
        assert runs.column_map[canonical] == column
    assert runs.derived == (("D",) if uses_c else ("C",))
    np.testing.assert_array_equal(runs.N, [1e8, 2e8])
    np.testing.assert_allclose(runs.D, [2e9, 4e9])
    np.testing.assert_array_equal(runs.loss, [3.1, 2.9])


def test_alias_table():
    normalised = [normalise(a) for names in ALIASES.values() for a in names]
    assert len(normalised) == len(set(normalised)), "an alias must name one column only"
    assert tuple(ALIASES)[:4] == CANONICAL
    assert all(names[0] == key for key, names in ALIASES.items())


def test_spreadsheet_export():
    # Byte-order mark, CRLF, blank lines, spaces around names, a quoted comma, unused columns.
    runs = load_runs(GOOD / "spreadsheet_export.csv")
    assert runs.column_map == {"N": "Model Size", "D": "Training Tokens", "loss": "Final-Loss"}
    np.testing.assert_array_equal(runs.N, [1e8, 2e8])
    np.testing.assert_array_equal(runs.loss, [3.1, 2.9])


def test_whitespace_and_long_integers(tmp_path):
    path = _write(
        tmp_path / "runs.csv",
        "N,D,C,loss\n 100000000 ,2000000000, 1200000000000000000 ,3.1\n"
        "16000000000,135000000000,12960000000000000000000,2.1\n",
    )
    np.testing.assert_array_equal(load_runs(path).C, [1.2e18, 1.296e22])


def test_explicit_columns_win():
    frame = pd.DataFrame(
        {"my col": [1e8, 2e8], "params": [5.0, 6.0], "tokens": [2e9, 4e9], "loss": [3.1, 2.9]}
    )
    runs = load_runs(frame, columns={"N": "my col"})
    np.testing.assert_array_equal(runs.N, [1e8, 2e8])
    assert runs.column_map == {"N": "my col", "D": "tokens", "loss": "loss"}


def test_explicit_columns_can_take_a_recognised_name():
    # "tokens" would be D; mapped to N it is N, and D then comes from C.
    frame = pd.DataFrame({"tokens": [1e8, 2e8], "compute": [1.2e18, 4.8e18], "loss": [3.1, 2.9]})
    runs = load_runs(frame, columns={"N": "tokens"})
    assert runs.column_map == {"N": "tokens", "C": "compute", "loss": "loss"}
    assert runs.derived == ("D",)


def test_derive_c_from_n_and_d():
    runs = load_runs(_frame(), cost_k=6)
    np.testing.assert_allclose(runs.C, 6 * runs.N * runs.D)
    assert runs.derived == ("C",)
    assert runs.cost_k == 6.0
    assert list(runs.table.columns) == ["N", "D", "C", "loss"]
    assert runs.table.dtypes.eq(np.float64).all()
    assert "C" not in runs.column_map


def test_derive_d_from_c_and_n():
    frame = pd.DataFrame({"N": [1e8, 2e8], "compute": [8e18, 1.6e19], "loss": [3.1, 2.9]})
    runs = load_runs(frame, cost_k=8)
    np.testing.assert_allclose(runs.D, frame["compute"] / (8 * frame["N"]))
    assert runs.derived == ("D",)
    assert runs.cost_k == 8.0
    assert "derived D = C / (8 N)" in str(runs)


def test_dataframe_is_not_mutated():
    frame = _frame(group=["a", "a", "b"])
    frame.index = [5, 6, 7]
    before = frame.copy()
    runs = load_runs(frame)
    pd.testing.assert_frame_equal(frame, before)
    runs.table.loc[0, "N"] = 1.0
    pd.testing.assert_frame_equal(frame, before)


def test_dataframe_errors_use_index_labels():
    frame = _frame()
    frame.index = ["r10", "r20", "r30"]
    frame.loc["r20", "loss"] = np.nan
    with pytest.raises(RunsFileError, match=r"^<DataFrame>: row r20, column 'loss': missing value"):
        load_runs(frame)
    frame = _frame()
    frame.loc[2, "params"] = -1.0
    with pytest.raises(
        RunsFileError, match=r"^<DataFrame>: row 2, column 'params': must be"
    ) as info:
        load_runs(frame)
    assert info.value.rows == [2]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ([1e8, None, 4e8], "row 1, column 'params': missing value"),
        (pd.array([100_000_000, None, 400_000_000], dtype="Int64"), "row 1, .*missing value"),
        (["1e8", "2e8", "many"], "row 2, column 'params': not a number"),
        ([True, False, True], "rows 0, 1, 2, column 'params': not a number"),
    ],
)
def test_dataframe_column_types(values, problem):
    frame = _frame()
    frame["params"] = pd.Series(values, dtype=object) if isinstance(values, list) else values
    with pytest.raises(RunsFileError, match=problem):
        load_runs(frame)


def test_dataframe_numbers_as_text_and_integers():
    frame = _frame()
    frame["params"] = ["1e8", "2e8", "4e8"]
    frame["tokens"] = [2_000_000_000, 4_000_000_000, 8_000_000_000]
    runs = load_runs(frame)
    np.testing.assert_array_equal(runs.N, [1e8, 2e8, 4e8])
    assert runs.table.dtypes.eq(np.float64).all()


def test_result_is_reindexed():
    frame = _frame()
    frame.index = [7, 8, 9]
    runs = load_runs(frame)
    assert list(runs.table.index) == [0, 1, 2]
    assert runs.source == "<DataFrame>"


def test_tsv_and_txt(tmp_path):
    text = "Model Size\ttokens\tloss\n1e8\t2e9\t3.1\n2e8\t4e9\t2.9\n"
    for name in ("runs.tsv", "runs.TXT"):
        path = _write(tmp_path / name, text)
        runs = load_runs(path)
        np.testing.assert_array_equal(runs.D, [2e9, 4e9])
        assert runs.column_map["N"] == "Model Size"
        assert runs.source == str(path)


def test_a_csv_with_semicolons_is_read_and_a_decimal_comma_named(tmp_path):
    # Spreadsheets in locales with a decimal comma separate CSV fields with semicolons.
    path = _write(tmp_path / "runs.csv", "\ufeffN;D;loss\r\n1e8;2e9;3.1\r\n\r\n2e8;4e9;2.9\r\n")
    runs = load_runs(path)
    np.testing.assert_array_equal(runs.loss, [3.1, 2.9])
    assert runs.rows == (2, 4)
    path = _write(tmp_path / "comma.csv", "N;D;loss\n1e8;2e9;3,1\n2e8;4e9;2.9\n")
    with pytest.raises(RunsFileError, match=r"line 2, column 'loss': not a number .*'3,1': "
                       r"write a decimal point"):  # fmt: skip
        load_runs(path)


def test_tsv_error_line(tmp_path):
    path = _write(tmp_path / "runs.tsv", "N\tD\tloss\n1e8\t2e9\t3.1\n2e8\t4e9\tzz\n")
    with pytest.raises(RunsFileError, match=r"runs\.tsv: line 3, column 'loss': not a number"):
        load_runs(path)


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path, suffix):
    pytest.importorskip("pyarrow")
    frame = _frame(group=["a", "a", "b"], weight=[1.0, 2.0, 0.5])
    path = tmp_path / f"runs{suffix}"
    frame.to_parquet(path)
    runs = load_runs(path)
    np.testing.assert_array_equal(runs.N, frame["params"])
    np.testing.assert_array_equal(runs.D, frame["tokens"])
    np.testing.assert_array_equal(runs.loss, frame["loss"])
    np.testing.assert_array_equal(runs.group, ["a", "a", "b"])
    np.testing.assert_array_equal(runs.weight, [1.0, 2.0, 0.5])
    assert runs.derived == ("C",)
    assert runs.source == str(path)


def test_parquet_rows_are_lines_as_in_csv(tmp_path):
    """One convention for every file: the header is line 1, the first run line 2 (README)."""
    pytest.importorskip("pyarrow")
    frame = _frame()
    frame.index = ["a", "b", "c"]  # a stored index is not what the user counts by
    frame.loc["b", "loss"] = 0.0
    path = tmp_path / "runs.parquet"
    frame.to_parquet(path)
    with pytest.raises(RunsFileError, match=r"runs\.parquet: line 3, column 'loss': must be"):
        load_runs(path)
    frame.to_csv(tmp_path / "runs.csv", index=False)
    with pytest.raises(RunsFileError, match=r"runs\.csv: line 3, column 'loss': must be"):
        load_runs(tmp_path / "runs.csv")


def test_runs_name_their_lines_after_subsetting(tmp_path):
    path = _write(
        tmp_path / "runs.csv", "params,tokens,loss\n1e8,2e9,3.1\n\n2e8,4e9,2.9\n4e8,8e9,2.7\n"
    )
    runs = load_runs(path)
    assert runs.rows == (2, 4, 5)  # the blank line 3 is counted, as an editor shows it
    kept = runs.subset(np.array([False, True, True]))
    assert kept.where(np.array([False, True])) == f"line 5 of {path}"
    frame_runs = load_runs(_frame().set_axis(["r1", "r2", "r3"]))
    assert frame_runs.where(np.array([True, False, True])) == "rows r1, r3 of <DataFrame>"


def test_a_run_far_off_every_other_warns_naming_its_line(chinchilla_csv, tmp_path):
    lines = chinchilla_csv.read_text().splitlines()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_runs(chinchilla_csv)  # Epoch's 245 runs: none far off (the farthest 5.4 sd of 10)
    header, first = lines[0].split(","), lines[11].split(",")
    first[header.index("loss")] = "15"  # 2.1-5.0 elsewhere: below the "above 20" check
    path = _write(tmp_path / "runs.csv", "\n".join([*lines[:11], ",".join(first), *lines[12:]]))
    with pytest.warns(DataWarning, match=r"line 12, column 'loss': loss far off every other run"):
        load_runs(path)


def test_parquet_unreadable(tmp_path):
    pytest.importorskip("pyarrow")
    path = _write(tmp_path / "runs.parquet", "params,tokens,loss\n1e8,2e9,3.1\n")
    with pytest.raises(RunsFileError, match=r"runs\.parquet: cannot be read as Parquet"):
        load_runs(path)


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    path = _write(tmp_path / "runs.parquet", "")
    with pytest.raises(ScalebayesError, match=re.escape('pip install "scalebayes[parquet]"')):
        load_runs(path)


def test_group_and_weight_columns(tmp_path):
    path = _write(
        tmp_path / "runs.csv",
        "params,tokens,loss,Group,weights\n1e8,2e9,3.1,7,1\n2e8,4e9,2.9,7,2\n4e8,8e9,2.7,x,0.5\n",
    )
    runs = load_runs(path)
    assert runs.group.dtype.kind == "U"
    np.testing.assert_array_equal(runs.group, ["7", "7", "x"])
    np.testing.assert_array_equal(runs.weight, [1.0, 2.0, 0.5])
    assert list(runs.table.columns) == ["N", "D", "C", "loss", "group", "weight"]
    assert "2 groups" in str(runs)
    no_extras = load_runs(_frame())
    assert no_extras.group is None and no_extras.weight is None


def test_subset():
    runs = load_runs(_frame(group=["a", "b", "b"]), cost_k=7)
    sub = runs.subset(runs.group == "b")
    assert isinstance(sub, Runs)
    assert len(sub) == 2
    np.testing.assert_array_equal(sub.N, [2e8, 4e8])
    assert list(sub.table.index) == [0, 1]
    assert (sub.cost_k, sub.derived, sub.source) == (7.0, ("C",), "<DataFrame>")
    assert sub.column_map == runs.column_map
    assert len(runs) == 3
    with pytest.raises(ScalebayesError, match=r"expected bool of shape \(3,\)"):
        runs.subset(np.array([True, False]))
    with pytest.raises(ScalebayesError, match=r"subset mask has dtype int64"):
        runs.subset(np.array([0, 1, 2]))  # indices, not a mask


def test_runs_rebuilt_from_json_types():
    # io.load_fit rebuilds Runs from JSON, where the tuple of derived columns became a list.
    runs = load_runs(_frame())
    again = Runs(runs.table, runs.source, runs.cost_k, dict(runs.column_map), ["C"])  # type: ignore[arg-type]
    assert again.derived == ("C",)


def test_inputs_and_log_inputs():
    runs = load_runs(_frame())
    inputs = runs.inputs()
    assert set(inputs) == {"N", "D", "C"}
    assert all(values.dtype == np.float64 and values.shape == (3,) for values in inputs.values())
    for name, values in runs.log_inputs().items():
        np.testing.assert_allclose(values, np.log(inputs[name]))
    copy = runs.to_frame()
    copy.loc[0, "N"] = 1.0
    assert runs.N[0] == 1e8


def test_str_mentions_count_ranges_source_and_derived_column():
    text = str(load_runs(_frame()))
    assert text.startswith("3 runs from <DataFrame>: N 1.00e+08-4.00e+08, D 2.00e+09-8.00e+09")
    assert "loss 2.700-3.100" in text
    assert "derived C = 6 N D" in text


# --- suspicious but legal: warnings, never silent drops (clean data warns nowhere above, as
# pytest turns every warning into an error) ---


def test_duplicate_runs_warn_naming_lines(tmp_path):
    path = _write(tmp_path / "runs.csv", "N,D,loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n1e8,2e9,3.0\n")
    with pytest.warns(DataWarning, match=r"lines 2, 4: duplicate runs \(same N and D\), all kept"):
        runs = load_runs(path)
    assert len(runs) == 3


def test_duplicate_runs_in_a_dataframe_name_index_labels():
    frame = _frame()
    frame.loc[2, ["params", "tokens"]] = [1e8, 2e9]
    with pytest.warns(DataWarning, match=r"^<DataFrame>: rows 0, 2: duplicate runs") as record:
        load_runs(frame)
    assert record[0].filename == __file__  # points at the caller of load_runs


def test_duplicate_runs_name_the_columns_that_tell_them_apart():
    # Two sweeps of two experiments at the same sizes (Open-Athena's extract, in small): the
    # experiment column differs within every pair, a run id (one value per row) is no grouping,
    # and a column equal within the pairs (the data set of both experiments) is not named.
    frame = pd.DataFrame(
        {"params": [1e8, 2e8, 1e8, 2e8], "tokens": [2e9, 4e9, 2e9, 4e9],
         "loss": [3.1, 2.9, 3.4, 3.2], "run": ["r1", "r2", "r3", "r4"],
         "experiment": ["llama", "llama", "marin", "marin"], "dataset": ["c4"] * 4}
    )  # fmt: skip
    with pytest.warns(DataWarning) as record:
        load_runs(frame)
    message = str(record[0].message)
    assert "columns that tell them apart: 'experiment' (2 values)" in message, message
    assert "'run'" not in message and "'dataset'" not in message
    assert "--group COLUMN" in message and "--where experiment=VALUE" in message


def test_repeats_over_seeds_are_named_as_such():
    # datablations' final losses repeat (N, D, U) over 'seed': no experiments to separate.
    frame = pd.DataFrame(
        {"N": [1e8, 2e8, 3e8] * 2, "D": [2e9, 4e9, 6e9] * 2,
         "loss": [3.1, 2.9, 2.8, 3.2, 3.0, 2.7], "run seed": [1] * 3 + [2] * 3}
    )  # fmt: skip
    with pytest.warns(DataWarning, match="repeats of one run over seeds") as record:
        load_runs(frame)
    assert "--group" not in str(record[0].message)
    frame["lab"] = ["a"] * 3 + ["b"] * 3  # a label besides the seed: maybe experiments
    with pytest.warns(DataWarning, match="--group COLUMN"):
        load_runs(frame)


def test_keep_best_keeps_each_n_and_ds_least_loss(tmp_path):
    # A learning-rate sweep per (N, D), as (Mis)Fitting's finished runs: the warning offers
    # keep_best, which keeps each (N, D)'s tuned run, each still named by its file's line.
    frame = pd.DataFrame(
        {"N": [1e8, 1e8, 2e8, 2e8, 4e8], "D": [2e9, 2e9, 4e9, 4e9, 8e9],
         "loss": [3.3, 3.1, 2.9, 3.0, 2.7], "lr": [1e-3, 2e-3, 1e-3, 2e-3, 1e-3]}
    )  # fmt: skip
    with pytest.warns(DataWarning, match=r"'lr' \(2 values\).*hyperparameter sweep.*--keep-best"):
        load_runs(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # no repeats left to warn of
        runs = load_runs(frame, keep_best=True)
    assert list(runs.loss) == [3.1, 2.9, 2.7] and list(runs.N) == [1e8, 2e8, 4e8]
    frame.to_csv(tmp_path / "sweep.csv", index=False)
    assert list(load_runs(tmp_path / "sweep.csv", keep_best=True).rows) == [3, 4, 6]  # lines


def test_a_second_measurement_does_not_tell_duplicate_runs_apart():
    # (Mis)Fitting's table repeats its loss as 'C4 Eval Loss' (240 values in 261 rows): an
    # outcome, not a label of experiments; 'lr' (2 values) is one.
    frame = pd.DataFrame(
        {"N": [1e8, 2e8, 3e8] * 2, "D": [2e9, 4e9, 6e9] * 2,
         "loss": [3.1, 2.9, 2.8, 3.2, 3.0, 3.1], "lr": [1e-3] * 3 + [2e-3] * 3}
    )  # fmt: skip
    frame["eval loss"] = frame["loss"]
    with pytest.warns(DataWarning) as record:
        load_runs(frame)
    message = str(record[0].message)
    assert "columns that tell them apart: 'lr' (2 values)" in message, message
    assert "eval loss" not in message


def test_same_n_and_d_in_different_groups_is_not_duplicate():
    frame = _frame(group=["a", "a", "b"])
    frame.loc[2, ["params", "tokens"]] = [1e8, 2e9]
    assert len(load_runs(frame)) == 3
    frame.loc[2, "group"] = "a"
    with pytest.warns(DataWarning, match=r"same N and D and group"):
        load_runs(frame)


def test_tokens_far_below_params_warn(tmp_path):
    path = _write(tmp_path / "runs.csv", "params,tokens,loss\n7e9,2e12,3.1\n7e10,1400,2.9\n")
    with pytest.warns(DataWarning, match=r"line 3, column 'tokens': fewer than 1 token per 1000"):
        runs = load_runs(path)
    assert runs.D[1] == 1400.0


def test_loss_above_20_warns(tmp_path):
    path = _write(tmp_path / "runs.csv", "params,tokens,loss\n1e8,2e9,310\n2e8,4e9,2.9\n")
    with pytest.warns(DataWarning, match=r"line 2, column 'loss': loss above 20"):
        runs = load_runs(path)
    assert runs.loss[0] == 310.0


# --- real data beside the checkout ---


def test_chinchilla_csv(chinchilla_csv):
    runs = load_runs(chinchilla_csv)
    assert len(runs) == 245
    assert runs.derived == ("D",)
    assert runs.column_map == {"N": "Model Size", "C": "Training FLOP", "loss": "loss"}
    np.testing.assert_allclose(runs.D, runs.C / (6 * runs.N))
    assert runs.C.min() == pytest.approx(1.4e18, rel=0.05)
    assert 2.0 < runs.loss.min() < runs.loss.max() < 5.1
    assert str(runs).startswith(f"245 runs from {chinchilla_csv}")


def test_open_athena_isoflops():
    path = _shared("open-athena-isoflops/isoflops_extract.csv")
    # Two digitisations of Chinchilla, and Llama 3's raw and exp losses, share N and D: the
    # warning is right until each experiment is its own group.
    with pytest.warns(DataWarning, match="duplicate runs .* apart: 'experiment' \\(8 values\\)"):
        load_runs(path)
    runs = load_runs(path, columns={"group": "experiment"})
    assert len(runs) == 947
    assert runs.column_map == {
        "N": "params",
        "D": "tokens",
        "loss": "loss",
        "group": "experiment",
        "budget": "budget",
    }
    assert len(set(runs.group)) == 8
    # The nominal isoFLOP level is kept for approach 2 beside C = 6 N D, which is up to 0.13
    # decades off it in Marin's sweeps (another FLOP convention at some sizes).
    assert runs.budget is not None and runs.derived == ("C",)
    assert np.all(np.abs(np.log10(runs.C / runs.budget)) < 0.15)


def test_datablations_final_losses():
    path = _shared("datablations/final_losses.csv")
    columns = {"N": "params_N", "D": "tokens_D", "C": "flops_6ND", "loss": "val_loss_c4"}
    # Seeds and unique-token budgets repeat N and D; only a U column would tell them apart.
    with pytest.warns(DataWarning, match="duplicate runs"):
        runs = load_runs(path, columns=columns)
    assert len(runs) == 296
    assert runs.derived == ()


@pytest.mark.parametrize(
    ("relative", "columns", "curves"),
    [
        ("chinchilla_svg_extracted.csv", None, False),
        ("open-athena-isoflops/isoflops_extract.csv", None, False),
        ("misfitting-curves/scaling_results_last_ckpt_only.csv", {"D": "D"}, False),
        ("datablations/final_losses.csv",
         {"N": "params_N", "D": "tokens_D", "loss": "val_loss_c4", "U": "unique_tokens_U"}, False),
        ("misfitting-curves/scaling_results.csv", {"D": "D"}, True),
        ("datablations/learning_curves_repetition_runs.csv",
         {"N": "num_params", "D": "token_num", "C": None}, True),
    ],
)  # fmt: skip
def test_public_tables_are_told_apart_as_runs_or_curves(relative, columns, curves):
    # The learning-curve check on real tables: every table of finished runs quiet, both tables
    # of checkpoints named; no loss rises with compute in any of them.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        load_runs(_shared(relative), columns=columns)
    said = [str(w.message) for w in caught]
    assert any("checkpoints of learning curves" in m for m in said) == curves, said
    assert not any("rises with compute" in m for m in said), said
