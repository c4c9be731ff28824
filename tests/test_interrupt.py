"""Nothing lost on Ctrl-C: the previous output stays byte for byte, and no temporary file is left.

The end-to-end test runs ``scalebayes fit --out`` in a subprocess whose final file move waits
60 s after the new file is complete (the wrapper below), and sends SIGINT when stderr shows a
given point: sampling started, sampling ended, the new file written but not yet moved. A lost
interrupt would let the move happen and fail the test; a kept one exits 130 at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.known_fits import ladder

from scalebayes import interrupts
from scalebayes.errors import OutputError
from scalebayes.outputs import replacing

OLD = b"the fit the user meant to keep\n"

WRAPPER = """\
import contextlib, sys, time
import scalebayes.io
from scalebayes.cli import main

real = scalebayes.io.replacing

@contextlib.contextmanager
def slow(path):
    with real(path) as tmp:
        yield tmp
        print("test: written, not yet moved", file=sys.stderr, flush=True)
        time.sleep(60)

scalebayes.io.replacing = slow
sys.exit(main(sys.argv[1:]))
"""


def _left(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_an_exception_inside_leaves_the_old_file(tmp_path):
    path = tmp_path / "fit.nc"
    path.write_bytes(OLD)
    with pytest.raises(KeyboardInterrupt), replacing(path) as tmp:
        tmp.write_bytes(b"half a fi")
        raise KeyboardInterrupt
    assert path.read_bytes() == OLD and _left(tmp_path) == {"fit.nc"}
    with replacing(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and _left(tmp_path) == {"fit.nc"}


def test_a_swallowed_interrupt_still_stops_the_write(tmp_path):
    """As when JAX's gc callback catches the KeyboardInterrupt and only prints it."""
    path = tmp_path / "fit.nc"
    path.write_bytes(OLD)
    with interrupts.recorded():
        try:
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.1)  # the handler runs at the next bytecode at the latest
        except KeyboardInterrupt:
            pass  # swallowed
        with pytest.raises(KeyboardInterrupt), replacing(path) as tmp:
            tmp.write_bytes(b"new")
    assert path.read_bytes() == OLD and _left(tmp_path) == {"fit.nc"}
    interrupts.check()  # recorded() forgets it on leaving


def test_a_failed_write_is_one_line(tmp_path):
    path = tmp_path / "fit.nc"
    with (
        pytest.raises(OutputError, match=r"fit\.nc: cannot write it \(No such file"),
        replacing(path) as tmp,
    ):
        tmp.with_name("gone").joinpath("x").write_bytes(b"")  # an OSError mid-write
    assert not _left(tmp_path)


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("interrupt") / "runs.csv"
    ladder().to_frame()[["N", "D", "loss"]].to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "marker",
    [
        "sampling: 100/600 iterations (warmup)",
        # Between the two others (sampled, not yet written): a third process of ~7 s.
        pytest.param("sampling: 600/600", marks=pytest.mark.slow),
        "test: written, not yet moved",
    ],
)
def test_ctrl_c_at_any_point_keeps_the_previous_fit(marker, runs_csv, tmp_path):
    out = tmp_path / "fit.nc"
    out.write_bytes(OLD)
    argv = [sys.executable, "-c", WRAPPER, "fit", str(runs_csv), "--out", str(out)]
    argv += ["--discrepancy", "none", "--chains", "2", "--draws", "300", "--warmup", "300"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    assert process.stderr is not None
    for line in process.stderr:  # progress goes to stderr, one line per quarter (not a tty)
        seen.append(line)
        if line.startswith(marker):
            process.send_signal(signal.SIGINT)
            break
    else:
        process.kill()
        pytest.fail(f"never saw {marker!r}: {''.join(seen)}")
    try:
        _, rest = process.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the interrupt was lost: the command went on")
    assert process.returncode == 130, "".join(seen) + rest
    assert "scalebayes: interrupted" in rest
    assert out.read_bytes() == OLD
    assert _left(tmp_path) == {"fit.nc"}


def test_an_interrupt_that_surfaces_as_another_error_is_still_an_interrupt():
    # JAX turned a KeyboardInterrupt raised inside its cache-key comparison into a ValueError
    # (seen in this suite under load): with a SIGINT recorded, any error leaving the block is
    # the interrupt.
    with pytest.raises(KeyboardInterrupt), interrupts.recorded():
        interrupts._pending.set()
        raise ValueError("Cache keys should be comparable using __eq__")
    with pytest.raises(ValueError), interrupts.recorded():  # no SIGINT: the error itself
        raise ValueError("a real error")
