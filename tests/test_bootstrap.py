"""scripts/bootstrap, which the README's setup commands and .ci/run use to find a Python >= 3.12.

The interpreter search (`scripts/bootstrap --find`) runs in a sandbox whose PATH holds only fake
`python3*`, `pyenv` and `uv` commands, so these tests see the same thing on every machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = ROOT / "scripts" / "bootstrap"
BASH = shutil.which("bash")

needs_bash = pytest.mark.skipif(
    BASH is None or os.name == "nt" or not Path("/bin/sh").exists(),
    reason="scripts/bootstrap is a bash script; the fakes are /bin/sh scripts",
)

NEED = "scalebayes needs Python >= 3.12"

# A pyenv machine like the one the README has to work on: global 3.11.7, with 3.12 and 3.13
# installed, and names pyenv lists that are not plain CPython versions.
PYENV_LIST = [
    "system",
    "2.7.18",
    "3.9.18",
    "3.11.7",
    "3.12.1",
    "3.12.1/envs/tools",
    "3.13.0",
    "3.13.0t",
    "miniconda3-latest",
    "pypy3.10-7.3.17",
]


class Sandbox:
    """A bin folder of fake commands, and a fake pyenv root."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.pyenv_root = tmp_path / "pyenv"
        # A copy of the script in a repository of its own: it works on the .venv beside it.
        self.repo = tmp_path / "repo"
        (self.repo / "scripts").mkdir(parents=True)
        shutil.copy2(BOOTSTRAP, self.repo / "scripts" / "bootstrap")

    def script(self, path: Path, body: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(0o755)
        return path

    def python(self, path: Path, version: str | None) -> Path:
        """A Python reporting `version`, or (None) a shim failing as pyenv's do when unselected."""
        if version is None:
            return self.script(
                path, f'echo "pyenv: {path.name}: command not found" >&2\nexit 127\n'
            )
        # What the script's probe prints: version and sys.executable (here: this file).
        return self.script(path, f'echo "{version} $0"\n')

    def on_path(self, name: str, version: str | None) -> Path:
        return self.python(self.bin / name, version)

    def pyenv(self, listed: list[str], working: dict[str, str | None]) -> None:
        """`pyenv versions --bare` lists `listed`; `working` maps a version to its python's."""
        for name, version in working.items():
            self.python(self.pyenv_root / "versions" / name / "bin" / "python3", version)
        lines = "\\n".join(listed)
        self.script(
            self.bin / "pyenv",
            f"""case "$1" in
  versions) printf '{lines}\\n' ;;
  which) p="{self.pyenv_root}/versions/$PYENV_VERSION/bin/$2"
    if [ -x "$p" ]; then echo "$p"; else echo "pyenv: $2: command not found" >&2; exit 127; fi ;;
  root) echo "{self.pyenv_root}" ;;
  *) exit 1 ;;
esac
""",
        )

    def pyenv_python(self, name: str) -> str:
        return str(self.pyenv_root / "versions" / name / "bin" / "python3")

    def uv(self, found: Path | None) -> None:
        answer = f'echo "{found}"' if found else "echo 'error: No interpreter found' >&2; exit 2"
        self.script(
            self.bin / "uv",
            f"""if [ "$1 $2 $3" = "python find >=3.12" ]; then {answer}; else exit 1; fi\n""",
        )

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        assert BASH is not None
        return subprocess.run(
            [BASH, "scripts/bootstrap", *args],
            cwd=self.repo,
            env={"PATH": str(self.bin), "HOME": str(self.bin.parent), **env},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )

    def find(self, **env: str) -> str:
        done = self.run("--find", **env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


@needs_bash
def test_pyenv_machine_whose_default_python_is_older(sandbox):
    # `pyenv global 3.11.7`: the 3.12/3.13 shims fail, python3 is 3.11; pyenv's newest 3.12+ wins.
    sandbox.on_path("python3.13", None)
    sandbox.on_path("python3.12", None)
    sandbox.on_path("python3", "3.11.7")
    sandbox.pyenv(
        PYENV_LIST,
        {"3.11.7": "3.11.7", "3.12.1": "3.12.1", "3.13.0": "3.13.0", "3.13.0t": "3.13.0"},
    )
    assert sandbox.find() == sandbox.pyenv_python("3.13.0")


@needs_bash
def test_pyenv_newest_first_by_number_and_skips_a_broken_one(sandbox):
    sandbox.on_path("python3", "3.11.7")
    sandbox.pyenv(
        ["3.12.9", "3.13.1", "3.12.10", "3.11.7"],
        {"3.12.9": "3.12.9", "3.12.10": "3.12.10", "3.13.1": None},
    )
    assert sandbox.find() == sandbox.pyenv_python("3.12.10")


@needs_bash
@pytest.mark.parametrize("good", ["python3.13", "python3.12", "python3"])
def test_path_first_in_order(sandbox, good):
    names = ["python3.13", "python3.12", "python3"]
    for name in names[names.index(good) + 1 :]:
        sandbox.on_path(name, "3.12.4")  # also fine, but later in the order
    for name in names[: names.index(good)]:
        sandbox.on_path(name, None)
    chosen = sandbox.on_path(good, "3.13.2" if good == "python3.13" else "3.12.4")
    sandbox.pyenv(["3.13.0"], {"3.13.0": "3.13.0"})
    assert sandbox.find() == str(chosen)


@needs_bash
def test_uv_last(sandbox):
    sandbox.on_path("python3", "3.11.7")
    found = sandbox.python(sandbox.bin.parent / "uv-python" / "bin" / "python3.12", "3.12.8")
    sandbox.uv(found)
    assert sandbox.find() == str(found)


@needs_bash
@pytest.mark.parametrize("old", ["3.9.18", "3.11.7"])  # 3.9: compared as numbers, not text
def test_none_found_says_what_to_install_in_one_line(sandbox, old):
    sandbox.on_path("python3", old)
    sandbox.on_path("python3.12", None)
    sandbox.pyenv(["3.11.7", "3.13.0t", "3.12.1/envs/tools"], {"3.13.0t": "3.13.0"})
    sandbox.uv(None)
    done = sandbox.run("--find")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(NEED)


@needs_bash
def test_an_old_venv_stays_when_there_is_nothing_to_replace_it_with(sandbox):
    sandbox.on_path("python3", "3.11.7")
    old_venv = sandbox.python(sandbox.repo / ".venv" / "bin" / "python", "3.11.7")
    done = sandbox.run()
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(NEED)
    assert old_venv.exists()


@needs_bash
def test_venv_replaced_when_old_kept_when_new_then_installed(sandbox):
    # Fakes for the rest: `python -m venv DIR` makes DIR/bin/python, whose `-m pip ...` is logged.
    for tool in ("mkdir", "rm", "cp"):
        real = shutil.which(tool)
        assert real is not None
        (sandbox.bin / tool).symlink_to(real)
    log = sandbox.bin.parent / "log"
    venv_python = sandbox.script(
        sandbox.bin.parent / "venv-python",
        f'if [ "$1" = -m ]; then echo "$*" >> "{log}"; exit 0; fi\necho "3.13.0 $0"\n',
    )
    sandbox.script(
        sandbox.bin / "python3.13",
        f"""if [ "$1 $2" = "-m venv" ]; then
  echo "venv $3" >> "{log}"; mkdir -p "$3/bin" && cp "{venv_python}" "$3/bin/python"; exit
fi
echo "3.13.0 $0"
""",
    )
    sandbox.python(sandbox.repo / ".venv" / "bin" / "python", "3.11.7")
    (sandbox.repo / ".venv" / "stale").write_text("", encoding="utf-8")

    done = sandbox.run("dev")
    assert done.returncode == 0, done.stderr
    assert "replacing .venv: its Python 3.11.7 is older than 3.12" in done.stdout
    assert not (sandbox.repo / ".venv" / "stale").exists()
    pip = "-m pip install -q --no-compile --disable-pip-version-check -e"
    assert log.read_text(encoding="utf-8").splitlines() == ["venv .venv", f"{pip} .[dev]"]

    done = sandbox.run()  # .venv is new enough now: kept, and the project installed again
    assert done.returncode == 0, done.stderr
    assert log.read_text(encoding="utf-8").splitlines()[2:] == [f"{pip} ."]


@needs_bash
def test_scalebayes_python_overrides_the_search(sandbox):
    sandbox.on_path("python3.13", "3.13.2")
    mine = sandbox.python(sandbox.bin.parent / "mine" / "python", "3.12.3")
    assert sandbox.find(SCALEBAYES_PYTHON=str(mine)) == str(mine)
    old = sandbox.python(sandbox.bin.parent / "old" / "python", "3.11.7")
    done = sandbox.run("--find", SCALEBAYES_PYTHON=str(old))
    assert done.returncode == 2
    assert "SCALEBAYES_PYTHON" in done.stderr


@needs_bash
def test_help_and_bad_arguments(sandbox):
    done = sandbox.run("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: scripts/bootstrap")
    for args in (["dev;rm"], ["dev", "cuda"], ["--find", "dev"], ["-x"]):
        done = sandbox.run(*args)
        assert done.returncode == 2, args
        assert done.stderr.startswith("usage:"), args


def readme_setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Set up on a fresh machine\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.DOTALL)


def test_readme_setup_uses_bootstrap():
    demo, tests = readme_setup_commands()
    assert demo.startswith("scripts/bootstrap && ")
    assert tests.startswith("scripts/bootstrap dev && ")
    assert "\n" not in demo + tests


def test_ci_runs_exactly_the_readme_test_command():
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    boilerplate = {"set -euo pipefail", 'cd "$(dirname "$0")/.."'}
    commands = [
        line
        for line in lines
        if line.strip() and not line.startswith("#") and line not in boilerplate
    ]
    assert commands == [readme_setup_commands()[1]]


@pytest.mark.skipif(os.name == "nt", reason="no exec bit")
def test_bootstrap_is_executable():
    assert os.access(BOOTSTRAP, os.X_OK)
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
