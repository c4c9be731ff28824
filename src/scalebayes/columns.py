"""The names people give the columns of a table of runs, and which column each name means.

A leaf: :func:`scalebayes.data.load_runs` reads tables by these names, the planners
(:func:`scalebayes.prediction.points_from_table`) read planned runs by them, a table whose
needed columns carry other names gets suggestions (:func:`suggest`) in the error, and duplicate
runs the columns that tell them apart (:func:`telling_apart`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from scalebayes.counts import BRACKETED, HeaderUnit, header_unit

CANONICAL = ("N", "D", "C", "loss")
# A column tells duplicate runs apart when its value differs within this share of their groups.
SEPARATING_SHARE = 0.9

# Names people use for each column, matched ignoring case, spaces, "_", "-", "/", "." and ":"
# (W&B exports write "eval/loss"), and for the counted columns with a unit at the end
# ("Parameters (M)", :func:`scalebayes.counts.header_unit`); the canonical
# name comes first. The key order is the column order of Runs.table; every column except
# "group" holds positive numbers. Too-vague names ("size", "data") are left out on purpose.
ALIASES: dict[str, tuple[str, ...]] = {
    "N": (
        "N", "model size", "params", "parameters", "n_params", "num_params", "n_parameters",
        "num_parameters", "param_count", "parameter_count", "params_count", "model_params",
        "total_params", "total parameters", "non-embedding params", "non-embedding parameters",
    ),
    "D": (
        "D", "tokens", "n_tokens", "num_tokens", "training tokens", "train_tokens",
        "tokens_seen", "tokens_trained", "total_tokens", "num_train_tokens", "n_train_tokens",
        "token_count", "data size", "dataset size",
    ),
    "C": (
        "C", "training FLOP", "training FLOPs", "train_flops", "FLOP", "FLOPs", "total_flops",
        "compute", "training compute",
    ),
    "loss": (
        "loss", "val_loss", "valid_loss", "validation loss", "eval_loss", "test_loss",
        "final_loss", "final_val_loss", "final_eval_loss", "dev_loss", "heldout_loss",
        "lm_loss", "train_loss", "training loss",
    ),
    "U": (
        "U", "unique tokens", "n_unique_tokens", "num_unique_tokens", "unique data",
        "unique data tokens",
    ),
    "group": ("group", "groups"),
    "weight": ("weight", "weights"),
    # The nominal compute of the isoFLOP sweep a run belongs to (approach 2 groups runs by it).
    "budget": ("budget", "isoflop budget", "flop budget", "flops budget", "compute budget",
               "isoflop", "isoflops", "nominal flops", "nominal compute"),
}  # fmt: skip


# Columns whose name may end with a unit; compute (PF-days) only for C and budget.
COUNTED = frozenset({"N", "D", "C", "U", "budget"})
COMPUTE = frozenset({"C", "budget"})
# A perplexity is exp of the loss in nats per token: a column of one is read as its log when
# the table has no loss column (older papers and some eval harnesses report only perplexity).
PERPLEXITY = (
    "perplexity", "ppl", "val_ppl", "valid_ppl", "validation perplexity", "val_perplexity",
    "eval_ppl", "eval_perplexity", "test_ppl", "test_perplexity", "final_ppl",
)  # fmt: skip
# A loss in bits (per token or per byte: "Loss (bits)", "loss [bits/token]") is read in nats,
# times ln 2, the unit the laws' priors are written in.
_BITS = frozenset({"bit", "bits", "bitstoken", "bitspertoken", "bitsperbyte", "bpb"})
# A note in brackets that leaves the quantity as it is, and the columns it may note (None: any):
# the plain unit ("Compute (FLOPs)", "Model size (params)", "Loss (nats)"; bits are scaled) or which
# count or loss it is ("Parameters (non-embedding)", as Kaplan et al.'s tables write it).
# Compared as :func:`normalise` leaves them.
_LOSS_NOTE = frozenset({"loss"})
_NOTES: dict[str, frozenset[str] | None] = {
    "flop": COMPUTE, "flops": COMPUTE, "count": None, "#": None,
    "params": frozenset({"N"}), "parameters": frozenset({"N"}),
    "nonembedding": frozenset({"N"}), "tokens": frozenset({"D", "U"}),
    "nat": _LOSS_NOTE, "nats": _LOSS_NOTE, "nattoken": _LOSS_NOTE, "natstoken": _LOSS_NOTE,
    "natspertoken": _LOSS_NOTE, "total": None, "training": None, "train": None,
    "validation": None, "valid": None, "val": None, "eval": None, "final": None, "test": None,
    **dict.fromkeys(_BITS, _LOSS_NOTE),
}  # fmt: skip


def normalise(name: object) -> str:
    """``name`` as matched: lower case, without spaces, ``_``, ``-``, ``/``, ``.`` and ``:``."""
    return re.sub(r"[\s_\-/.:]+", "", str(name)).lower()


CANONICAL_OF = {normalise(alias): key for key, aliases in ALIASES.items() for alias in aliases}
# Words that name a loss in other units or other words (bits per byte, as Marin's and OLMo's
# evals log it; negative log-likelihood; cross-entropy): never read as the loss unasked, since
# the units differ from nats per token, but suggested for it.
LOSS_WORDS = frozenset({"bpb", "bpc", "bitsperbyte", "bitsperchar", "nll", "xent", "crossentropy"})
_PERPLEXITY_NAMES = frozenset(normalise(name) for name in PERPLEXITY)


def canonical(name: object) -> str | None:
    """The canonical column a column called ``name`` holds (:data:`ALIASES`), or None.

    A counted column may carry its unit: ``"Tokens (B)"`` is D (:func:`unit_of` gives the unit).
    """
    key = CANONICAL_OF.get(normalise(name))
    unit = header_unit(name) if key is None else None
    if unit is not None:
        key = CANONICAL_OF.get(normalise(unit.base))
        if key not in COUNTED or (unit.compute and key not in COMPUTE):
            key = None
    elif key is None and (noted := BRACKETED.match(str(name).strip())) is not None:
        note = normalise(noted["unit"])
        key = CANONICAL_OF.get(normalise(noted["base"])) if note in _NOTES else None
        if key is not None and _NOTES[note] is not None and key not in _NOTES[note]:
            key = None  # "params (FLOPs)" is no count of parameters
    return key


def is_perplexity(name: object) -> bool:
    """Whether a column's name says it holds a perplexity (:data:`PERPLEXITY`)."""
    return normalise(name) in _PERPLEXITY_NAMES


def loss_in_bits(name: object) -> bool:
    """Whether a loss column's name says its unit is bits (``"Loss (bits)"``): read times ln 2."""
    noted = BRACKETED.match(str(name).strip())
    return noted is not None and normalise(noted["unit"]) in _BITS


def unit_of(name: object, key: str) -> HeaderUnit | None:
    """The unit the name of a column read as ``key`` gives it, or None (plain counts).

    Also for a column mapped by hand: ``{"N": "non-embedding params (M)"}`` counts millions.
    A recognised name is never a unit (``"C"`` alone, ``"tokens"``).
    """
    if key not in COUNTED or CANONICAL_OF.get(normalise(name)) is not None:
        return None
    unit = header_unit(name)
    if unit is None or (unit.compute and key not in COMPUTE):
        return None
    return unit


def suggest(names: Iterable[object]) -> dict[str, list[str]]:
    """Columns whose names contain a recognised name as whole words, by the column they may be.

    ``params_N`` may be N, ``val_loss_c4`` loss (so may ``val_bpb``, :data:`LOSS_WORDS`),
    ``unique_tokens_U`` U: each column goes to the
    key of the longest recognised name among its runs of consecutive words, split at spaces,
    ``_``, ``-``, ``.``, ``/`` and ``:`` (W&B exports write ``eval/loss``). One-letter names
    are not matched inside longer names (``d_model`` is no D); singulars are (``token_num``).
    Columns that are recognised names themselves are left out: they are read, not suggested.
    """
    found: dict[str, list[str]] = {}
    for name in names:
        text = str(name)
        if canonical(text) is not None:
            continue
        words = [w for w in re.split(r"[\s_\-./:]+", text.lower()) if w]
        runs = [
            "".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)
        ]
        best: tuple[int, str] | None = None
        for joined in runs:
            # A singular counts too: "token_num", "param_count".
            key = CANONICAL_OF.get(joined, CANONICAL_OF.get(joined + "s"))
            if key is not None and len(joined) > 1 and (best is None or len(joined) > best[0]):
                best = (len(joined), key)
        if best is None and LOSS_WORDS.intersection(runs):
            best = (0, "loss")
        if best is not None:
            found.setdefault(best[1], []).append(text)
    return found


def telling_apart(
    frame: pd.DataFrame, duplicated: np.ndarray, groups: np.ndarray, used: Iterable[str]
) -> list[tuple[str, int]]:
    """Columns not read that tell duplicate runs apart, and how many values each has, fewest first.

    ``duplicated`` marks the rows of ``frame`` that share their inputs with another, ``groups``
    labels those rows by the inputs they share. A column tells them apart when its value
    differs within at least 90 % of the groups; a column of one value in all, or of more values
    than half the rows (a run id, another measurement such as a second eval loss), is no
    grouping. Counts are over the whole table; at most 3.
    """
    taken = set(used)
    found = []
    names = list(frame.columns)
    for name in names:
        if name in taken or names.count(name) > 1:  # a repeated name selects several columns
            continue
        values = frame[name].reset_index(drop=True)
        try:  # compared as they are: as text, a wide table's float columns took seconds
            n_values = values.nunique(dropna=False)
        except TypeError:  # unhashable cells (lists in a DataFrame)
            values = values.astype(str)
            n_values = values.nunique()
        if n_values < 2 or n_values > len(values) / 2:
            continue
        within = values[np.asarray(duplicated)].groupby(groups).nunique(dropna=False)
        if (within > 1).mean() >= SEPARATING_SHARE:
            found.append((n_values, str(name)))
    return [(name, n) for n, name in sorted(found)[:3]]
