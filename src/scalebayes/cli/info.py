"""The commands that describe: laws (the catalogue) and env (versions, devices, precision)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from scalebayes import __version__
from scalebayes.cli._common import RAW

ENV_PACKAGES = (
    "jax",
    "jaxlib",
    "numpyro",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "arviz-plots",
    "xarray",
    "h5netcdf",
    "numpy",
    "pandas",
    "matplotlib",
)


def add_commands(commands: Any) -> None:
    """Register laws and env on the CLI's sub-parser collection."""
    laws = commands.add_parser(
        "laws",
        help="list the law catalogue with formulas and default priors",
        epilog="examples:\n  scalebayes laws\n  scalebayes laws chinchilla\n  scalebayes laws ./my_law.toml",
        formatter_class=RAW,
    )
    laws.add_argument("law", nargs="?", help="show one law (catalogue name or .toml path) in full")
    laws.add_argument("--json", action="store_true", help="machine-readable output")
    laws.set_defaults(handler=_laws, needs_jax=False)

    env = commands.add_parser(
        "env", help="versions, JAX devices and precision (paste into bug reports)"
    )
    env.set_defaults(handler=_env)


def _laws(args: argparse.Namespace) -> int:
    from scalebayes.laws import available_laws, load_law

    laws = {args.law: load_law(args.law)} if args.law else available_laws()
    if args.json:
        print(json.dumps({name: law.to_dict() for name, law in laws.items()}, indent=2))
    elif args.law:
        print(laws[args.law])
    else:
        for name, law in laws.items():
            print(f"{name:18s} {law.formula}")
            print(f"{'':18s} {law.title}; inputs {', '.join(law.inputs)}")
            for pname, param in law.params.items():
                print(f"{'':20s}{pname:8s} ~ {param.prior}   {param.doc}")
            print()
        print(
            "Use --law NAME, or --law path/to/law.toml for your own (see `scalebayes laws chinchilla`)."
        )
    return 0


def _env(args: argparse.Namespace) -> int:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import jax

    from scalebayes.runtime import DEFAULT_PRECISION, default_cache_dir

    print(f"scalebayes {__version__}  python {platform.python_version()}  {platform.platform()}")
    for package in ENV_PACKAGES:
        try:
            print(f"  {package:12s} {version(package)}")
        except PackageNotFoundError:
            print(f"  {package:12s} not installed")
    print(
        f"JAX backend: {jax.default_backend()}; devices: {', '.join(str(d) for d in jax.devices())}"
    )
    print(
        f"precision: {DEFAULT_PRECISION} unless a fit's settings say otherwise; chains are spread "
        "over the devices above"
    )
    print(f"compile cache: {default_cache_dir()} (SCALEBAYES_COMPILE_CACHE=0 turns it off)")
    return 0
