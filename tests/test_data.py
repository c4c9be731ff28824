"""Loading runs: column recognition, derivation of C or D, and errors that point at the cell."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalebayes.data import ALIASES, Runs, load_runs
from scalebayes.errors import DataWarning, RunsFileError, ScalebayesError

BAD = Path(__file__).parent / "data" / "bad_runs"


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


# --- bad files: every error names the file, the line and the column as the user wrote it ---


@pytest.mark.parametrize(
    ("name", "line", "column", "problem"),
    [
        ("not_a_number.csv", 3, "tokens", "not a number"),
        ("thousands_separator.csv", 4, "params", "not a number"),
        ("empty_cell.csv", 3, "loss", "missing value"),
        ("nan.csv", 2, "loss", "missing value"),
        ("inf.csv", 4, "tokens", "infinite value"),
        ("zero.csv", 3, "params", r"must be positive \(> 0\)"),
        ("negative.csv", 4, "loss", r"must be positive \(> 0\)"),
        ("empty_group.csv", 3, "group", "group label is empty"),
    ],
)
def test_bad_cell_names_file_line_and_column(name, line, column, problem):
    path = BAD / name
    pattern = rf"^{re.escape(str(path))}: line {line}, column '{column}': {problem}"
    with pytest.raises(RunsFileError, match=pattern) as info:
        load_runs(path)
    assert info.value.source == str(path)
    assert info.value.column == column
    assert info.value.rows == [line]


def test_bad_cell_error_lists_every_bad_row(tmp_path):
    path = _write(tmp_path / "runs.csv", "N,D,loss\n1e8,x,3\n2e8,4e9,2.9\n4e8,y,2.7\n")
    with pytest.raises(RunsFileError, match=r"runs\.csv: lines 2, 4, column 'D': not a number"):
        load_runs(path)


def test_missing_loss_lists_columns_found_and_accepted_names():
    path = BAD / "missing_loss.csv"
    with pytest.raises(RunsFileError, match=re.escape(str(path))) as info:
        load_runs(path)
    message = str(info.value)
    assert "no column for loss" in message
    assert "['params', 'tokens', 'score']" in message
    assert "val" in message and "loss: loss/valloss" in message
    assert "columns={'N': NAME}" in message


def test_missing_d_and_c():
    path = BAD / "missing_d_and_c.csv"
    with pytest.raises(RunsFileError, match=re.escape(str(path))) as info:
        load_runs(path)
    message = str(info.value)
    assert "training tokens (D) or training compute (C)" in message
    assert "['params', 'loss']" in message
    assert "D d/tokens" in message and "C c/trainingflop" in message


def test_header_only_has_no_runs():
    path = BAD / "header_only.csv"
    with pytest.raises(RunsFileError, match=rf"^{re.escape(str(path))}: .*no runs"):
        load_runs(path)


def test_totally_empty_file():
    path = BAD / "empty.csv"
    with pytest.raises(RunsFileError, match=rf"^{re.escape(str(path))}: the file is empty"):
        load_runs(path)


def test_inconsistent_c_is_an_error_naming_rows():
    path = BAD / "inconsistent_c.csv"
    pattern = rf"^{re.escape(str(path))}: line 3, column 'flops': C differs from 6 \* N \* D"
    with pytest.raises(RunsFileError, match=pattern) as info:
        load_runs(path)
    assert "accept_inconsistent_c=True" in str(info.value)
    assert info.value.rows == [3]


def test_inconsistent_c_accepted_warns_and_keeps_c():
    path = BAD / "inconsistent_c.csv"
    with pytest.warns(DataWarning, match=r"line 3, column 'flops': .*\(kept as given\)"):
        runs = load_runs(path, accept_inconsistent_c=True)
    np.testing.assert_array_equal(runs.C, [1.2e18, 7.2e18, 1.92e19])
    np.testing.assert_array_equal(runs.D, [2e9, 4e9, 8e9])
    assert runs.derived == ()


def test_inconsistent_c_respects_cost_k_and_rtol():
    frame = _frame(flops=[8 * 1e8 * 2e9, 8 * 2e8 * 4e9, 8 * 4e8 * 8e9])
    with pytest.raises(RunsFileError, match="C differs from 6"):
        load_runs(frame)
    assert load_runs(frame, cost_k=8).cost_k == 8.0
    assert len(load_runs(frame, c_rtol=0.5)) == 3


def test_two_columns_matching_n_ask_for_explicit_mapping():
    path = BAD / "ambiguous_n.csv"
    pattern = rf"^{re.escape(str(path))}: columns \['params', 'n_params'\] could all be N"
    with pytest.raises(RunsFileError, match=pattern) as info:
        load_runs(path)
    assert "columns={'N': ...}" in str(info.value)
    runs = load_runs(path, columns={"N": "n_params"})
    assert runs.column_map["N"] == "n_params"


def test_explicit_mapping_to_missing_column():
    path = BAD / "missing_loss.csv"
    pattern = rf"^{re.escape(str(path))}: column 'val loss' \(mapped to loss\) not found"
    with pytest.raises(RunsFileError, match=pattern) as info:
        load_runs(path, columns={"loss": "val loss"})
    assert "['params', 'tokens', 'score']" in str(info.value)


def test_explicit_mapping_with_unknown_canonical_name():
    with pytest.raises(RunsFileError, match=r"columns= names \['tokens'\] unknown"):
        load_runs(_frame(), columns={"tokens": "tokens"})


def test_unknown_extension(tmp_path):
    path = _write(tmp_path / "runs.xlsx", "params,tokens,loss\n1e8,2e9,3.1\n")
    with pytest.raises(
        RunsFileError, match=rf"^{re.escape(str(path))}: unknown file type '\.xlsx'"
    ):
        load_runs(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(RunsFileError, match=rf"^{re.escape(str(path))}: no such file"):
        load_runs(path)


def test_bad_cost_k():
    with pytest.raises(ScalebayesError, match="cost_k=0"):
        load_runs(_frame(), cost_k=0)


# --- good paths ---


@pytest.mark.parametrize(
    ("header", "second", "expected"),
    [
        (
            "Model Size,Training FLOP,loss",
            (1.2e18, 4.8e18),
            {"N": "Model Size", "C": "Training FLOP"},
        ),
        ("params,tokens,val_loss", (2e9, 4e9), {"N": "params", "D": "tokens", "loss": "val_loss"}),
        (
            "PARAMS,Num_Tokens,Val Loss",
            (2e9, 4e9),
            {"N": "PARAMS", "D": "Num_Tokens", "loss": "Val Loss"},
        ),
        (
            "n,data set size,final-loss",
            (2e9, 4e9),
            {"N": "n", "D": "data set size", "loss": "final-loss"},
        ),
    ],
)
def test_aliases(tmp_path, header, second, expected):
    path = _write(tmp_path / "runs.csv", f"{header}\n1e8,{second[0]},3.1\n2e8,{second[1]},2.9\n")
    runs = load_runs(path)
    assert len(runs) == 2
    for canonical, column in expected.items():
        assert runs.column_map[canonical] == column
    np.testing.assert_array_equal(runs.N, [1e8, 2e8])
    np.testing.assert_allclose(runs.D, [2e9, 4e9])
    np.testing.assert_array_equal(runs.loss, [3.1, 2.9])


def test_every_alias_is_in_normalised_form():
    for aliases in ALIASES.values():
        for alias in aliases:
            assert alias == re.sub(r"[\s_\-]+", "", alias).lower(), alias


def test_explicit_columns_win():
    frame = pd.DataFrame(
        {"my col": [1e8, 2e8], "params": [5.0, 6.0], "tokens": [2e9, 4e9], "loss": [3.1, 2.9]}
    )
    runs = load_runs(frame, columns={"N": "my col"})
    np.testing.assert_array_equal(runs.N, [1e8, 2e8])
    assert runs.column_map == {"N": "my col", "D": "tokens", "loss": "loss"}


def test_derive_c_from_n_and_d():
    runs = load_runs(_frame(), cost_k=6)
    np.testing.assert_allclose(runs.C, 6 * runs.N * runs.D)
    assert runs.derived == ("C",)
    assert runs.cost_k == 6.0
    assert list(runs.table.columns) == ["N", "D", "C", "loss"]
    assert runs.table.dtypes.eq(np.float64).all()


def test_derive_d_from_c_and_n():
    frame = pd.DataFrame({"N": [1e8, 2e8], "compute": [8e18, 1.6e19], "loss": [3.1, 2.9]})
    runs = load_runs(frame, cost_k=8)
    np.testing.assert_allclose(runs.D, frame["compute"] / (8 * frame["N"]))
    assert runs.derived == ("D",)
    assert runs.cost_k == 8.0
    assert "derived D = C / (8 N)" in str(runs)


def test_dataframe_is_not_mutated():
    frame = _frame(group=["a", "a", "b"])
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
    with pytest.raises(RunsFileError, match=r"^<DataFrame>: row 2, column 'params': must be"):
        load_runs(frame)


def test_dataframe_with_non_numeric_dtype():
    frame = _frame()
    frame["params"] = [True, False, True]
    with pytest.raises(RunsFileError, match=r"column 'params': expected numbers, found bool"):
        load_runs(frame)
    frame = _frame()
    frame["tokens"] = ["2e9", "4e9", "many"]
    with pytest.raises(RunsFileError, match=r"row 2, column 'tokens': not a number"):
        load_runs(frame)


def test_dataframe_result_is_reindexed():
    frame = _frame()
    frame.index = [7, 8, 9]
    runs = load_runs(frame)
    assert list(runs.table.index) == [0, 1, 2]
    assert runs.source == "<DataFrame>"


def test_tsv(tmp_path):
    path = _write(tmp_path / "runs.tsv", "Model Size\ttokens\tloss\n1e8\t2e9\t3.1\n2e8\t4e9\t2.9\n")
    runs = load_runs(path)
    np.testing.assert_array_equal(runs.D, [2e9, 4e9])
    assert runs.column_map["N"] == "Model Size"
    assert runs.source == str(path)


def test_tsv_error_line(tmp_path):
    path = _write(tmp_path / "runs.tsv", "N\tD\tloss\n1e8\t2e9\t3.1\n2e8\t4e9\tzz\n")
    with pytest.raises(RunsFileError, match=r"runs\.tsv: line 3, column 'loss': not a number"):
        load_runs(path)


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    frame = _frame(group=["a", "a", "b"], weight=[1.0, 2.0, 0.5])
    path = tmp_path / "runs.parquet"
    frame.to_parquet(path)
    runs = load_runs(path)
    np.testing.assert_array_equal(runs.N, frame["params"])
    np.testing.assert_array_equal(runs.D, frame["tokens"])
    np.testing.assert_array_equal(runs.loss, frame["loss"])
    np.testing.assert_array_equal(runs.group, ["a", "a", "b"])
    np.testing.assert_array_equal(runs.weight, [1.0, 2.0, 0.5])
    assert runs.derived == ("C",)


def test_parquet_error_names_row(tmp_path):
    pytest.importorskip("pyarrow")
    frame = _frame()
    frame.loc[1, "loss"] = 0.0
    path = tmp_path / "runs.parquet"
    frame.to_parquet(path)
    with pytest.raises(
        RunsFileError, match=r"runs\.parquet: row 2, column 'loss': must be positive"
    ):
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


def test_weight_must_be_positive():
    with pytest.raises(RunsFileError, match=r"row 1, column 'weight': must be positive"):
        load_runs(_frame(weight=[1.0, 0.0, 1.0]))


def test_subset():
    runs = load_runs(_frame(group=["a", "b", "b"]), cost_k=7)
    sub = runs.subset(runs.group == "b")
    assert isinstance(sub, Runs)
    assert len(sub) == 2
    np.testing.assert_array_equal(sub.N, [2e8, 4e8])
    assert list(sub.table.index) == [0, 1]
    assert (sub.cost_k, sub.derived, sub.source) == (7.0, ("C",), "<DataFrame>")
    assert dict(sub.column_map) == dict(runs.column_map)
    assert len(runs) == 3
    with pytest.raises(ScalebayesError, match=r"subset mask has shape \(2,\); expected \(3,\)"):
        runs.subset(np.array([True, False]))


def test_inputs_and_log_inputs():
    runs = load_runs(_frame())
    inputs = runs.inputs()
    assert set(inputs) == {"N", "D", "C"}
    for name, values in runs.log_inputs().items():
        np.testing.assert_allclose(values, np.log(inputs[name]))
    copy = runs.to_frame()
    copy.loc[0, "N"] = 1.0
    assert runs.N[0] == 1e8


def test_str_mentions_count_and_derived_column():
    text = str(load_runs(_frame()))
    assert text.startswith("3 runs from <DataFrame>: N 1.00e+08-4.00e+08")
    assert "derived C = 6 N D" in text
    assert "loss 2.700-3.100" in text


# --- suspicious but legal: warnings, never silent drops ---


def test_duplicate_runs_warn():
    frame = _frame()
    frame.loc[2, ["params", "tokens"]] = [1e8, 2e9]
    with pytest.warns(DataWarning, match=r"rows 0, 2: duplicate runs \(same N and D\); kept all"):
        runs = load_runs(frame)
    assert len(runs) == 3


def test_same_n_and_d_in_different_groups_is_not_duplicate():
    frame = _frame(group=["a", "a", "b"])
    frame.loc[2, ["params", "tokens"]] = [1e8, 2e9]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_runs(frame)) == 3


def test_tokens_far_below_params_warn(tmp_path):
    path = _write(tmp_path / "runs.csv", "params,tokens,loss\n1e8,2e9,3.1\n2e8,4,2.9\n")
    with pytest.warns(DataWarning, match=r"line 3, column 'tokens': fewer than 1 token per 1000"):
        load_runs(path)


def test_loss_above_20_warns(tmp_path):
    path = _write(tmp_path / "runs.csv", "params,tokens,loss\n1e8,2e9,310\n2e8,4e9,2.9\n")
    with pytest.warns(DataWarning, match=r"line 2, column 'loss': loss above 20"):
        runs = load_runs(path)
    assert runs.loss[0] == 310.0


def test_clean_data_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_runs(_frame())


# --- the real extracted Chinchilla data ---


def test_chinchilla_csv(chinchilla_csv):
    runs = load_runs(chinchilla_csv)
    assert len(runs) == 245
    assert runs.derived == ("D",)
    assert runs.column_map["N"] == "Model Size"
    assert runs.column_map["C"] == "Training FLOP"
    assert runs.column_map["loss"] == "loss"
    np.testing.assert_allclose(runs.D, runs.C / (6 * runs.N))
    assert np.isfinite(runs.log_inputs()["D"]).all()
    assert str(runs).startswith(f"245 runs from {chinchilla_csv}")


def test_repeated_header_name_is_an_error():
    path = BAD / "repeated_header.csv"
    with pytest.raises(
        RunsFileError, match=r"repeated_header\.csv: line 1: .*'params'.* more than once"
    ):
        load_runs(path)


def test_one_column_mapped_twice_is_an_error():
    frame = pd.DataFrame({"x": [1e9], "tokens": [2e10], "loss": [2.5]})
    with pytest.raises(RunsFileError, match=r"'x'.* more than one canonical"):
        load_runs(frame, columns={"N": "x", "D": "x"})


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        # A quoted cell spanning lines and a blank line: the bad cell is on line 6 of the file.
        ("multiline_then_missing.csv", r"line 6, column 'loss': missing value"),
        ("blank_line_then_bad.csv", r"line 4, column 'loss': not a number"),
        ("ragged.csv", r"line 3: expected 3 fields as in the header"),
        # "size" could be model or dataset size: ask rather than guess.
        ("bare_size_column.csv", r"no column for N"),
    ],
)
def test_line_numbers_are_the_files_own(name, pattern):
    with pytest.raises(RunsFileError, match=re.escape(str(BAD / name)) + ": " + pattern):
        load_runs(BAD / name)
