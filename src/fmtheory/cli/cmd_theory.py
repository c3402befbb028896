"""``fmtheory theory list`` and ``fmtheory theory NAME --param VALUE ... [--json]``."""

from __future__ import annotations

import argparse

from fmtheory.cli.common import UsageError, out_console, print_json
from fmtheory.errors import ConfigError
from fmtheory.theory import get_formula, list_formulas


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "theory",
        help="evaluate a registered closed form without training",
        description="`fmtheory theory list` shows every formula; "
        "`fmtheory theory NAME --PARAM VALUE ...` evaluates one.",
    )
    p.add_argument("name", metavar="NAME|list")
    p.add_argument("--json", action="store_true")
    p.add_argument("--long", action="store_true", help="with list: parameters and source of each")
    p.set_defaults(func=_run, accepts_extra=True)


def parse_params(extra: list[str]) -> dict[str, str]:
    """``["--d", "5", "--sigma=0.5"]`` -> ``{"d": "5", "sigma": "0.5"}``."""
    params: dict[str, str] = {}
    i = 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or tok == "--":
            raise UsageError(f"argument {tok!r}: expected --PARAM VALUE")
        key = tok[2:]
        if "=" in key:
            key, val = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise UsageError(f"--{key}: missing value")
            val = extra[i + 1]
            i += 2
        params[key.replace("-", "_")] = val
    return params


def _run(args: argparse.Namespace) -> int:
    if args.name == "list":
        if args.extra:
            raise UsageError(f"theory list takes no parameters, got {' '.join(args.extra)}")
        return _list(args.json, args.long)
    try:
        f = get_formula(args.name)
    except ValueError as e:
        raise ConfigError("NAME", args.name, str(e)) from None
    try:
        params = f.resolve(parse_params(args.extra))
        val = f.fn(**params)
    except ValueError as e:
        raise UsageError(f"{args.name}: {e}") from None
    if args.json:
        print_json(
            {
                "name": f.name,
                "params": params,
                "value": val.value,
                "stderr": val.stderr,
                "source": f.source,
            }
        )
    else:
        se = "" if val.stderr is None else f" ± {val.stderr:.3g} (Monte Carlo s.e.)"
        out_console().print(
            f"{f.name}({', '.join(f'{k}={v}' for k, v in params.items())}) = "
            f"[bold]{val.value:.6g}[/]{se}\n[dim]{f.summary}\nsource: {f.source}[/]"
        )
    return 0


def _list(as_json: bool, long: bool = False) -> int:
    formulas = list_formulas()
    if as_json:
        print_json(
            [
                {
                    "name": f.name,
                    "summary": f.summary,
                    "source": f.source,
                    "params": [
                        {
                            "name": p.name,
                            "default": p.default,
                            "allowed": p.allowed(),
                            "help": p.help,
                        }
                        for p in f.params
                    ],
                }
                for f in formulas
            ]
        )
        return 0
    con = out_console()
    width = max((len(f.name) for f in formulas), default=0)
    for f in formulas:
        if long:
            ps = ", ".join(
                p.name if p.default is None else f"{p.name}={p.default:g}" for p in f.params
            )
            con.print(f"{f.name}", highlight=False)
            con.print(f"    {f.summary}", highlight=False)
            con.print(f"    parameters: {ps}; source: {f.source}", highlight=False)
        else:
            n = max(20, 76 - width)
            what = f.summary if len(f.summary) <= n else f.summary[: n - 1].rstrip() + "…"
            con.print(f"{f.name:<{width}}  {what}", highlight=False)
    return 0
