"""The decisions' tables: the library lays each result out once; the CLI only prints it."""

from __future__ import annotations

import json

import numpy as np
from tests.known_fits import chinchilla_known

import scalebayes as sb
from scalebayes.cli import main


def test_each_decision_table_has_rows_text_and_the_fits_diagnostics():
    fit = chinchilla_known()
    results = {
        "predict": sb.prediction_table(fit, N=[1e9, 7e10], D=[2e10, 1.4e12]),
        "optimal": sb.allocation_table(fit, [1e22, 5.76e23]),
        "chance": sb.chance_table(fit, 2.3, N=[1e9, 7e10], D=[2e10, 1.4e12]),
        "plan": sb.plan_table(fit, 2.3, inference_tokens=[0.0, 1e13]),
    }
    for name, result in results.items():
        assert len(result.table) == 2, name
        assert str(result) == result.text and "\n" in result.text, name
        record = result.to_dict()
        assert record["law"] == "chinchilla" and len(record["rows"]) == 2, name
        assert record["diagnostics"]["line"] == str(fit.diagnostics), name
    table = results["predict"].table
    # The new run's interval holds the law's (it adds the noise).
    assert np.all(table["predictive_lb"] <= table["credible_lb"])
    assert np.all(table["predictive_ub"] >= table["credible_ub"])
    assert results["optimal"].meta["approach"] == "3"
    assert "cheapest run" in results["plan"].text


def test_the_cli_prints_the_librarys_text_and_json(tmp_path, capsys):
    fit = chinchilla_known()
    path = str(sb.save_fit(fit, tmp_path / "fit.nc"))
    result = sb.chance_table(fit, 2.3, N=[7e10], D=[1.4e12])
    assert main(["chance", path, "--N", "7e10", "--D", "1.4e12", "--target", "2.3"]) == 0
    assert capsys.readouterr().out == f"{result}\n{fit.diagnostics}\n"
    assert main(["chance", path, "--N", "7e10", "--D", "1.4e12", "--target", "2.3", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["fit"] == path
    assert payload["rows"] == result.to_dict()["rows"]
