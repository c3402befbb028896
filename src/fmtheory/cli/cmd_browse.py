"""``fmtheory browse [STORE]``: the store's results browser (index.html), rebuilt and opened."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fmtheory.cli.common import UsageError, out_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("browse", help="rebuild and open the run store's index.html")
    p.add_argument("store", nargs="?", default="runs", help="run store (default: runs/)")
    p.add_argument("--no-open", action="store_true", help="only print the page's path")
    p.add_argument(
        "--serve", type=int, metavar="PORT", default=None,
        help="serve the store over HTTP on 127.0.0.1:PORT (opt-in; the page needs no server)",
    )  # fmt: skip
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from fmtheory.runs.browser import write_index

    root = Path(args.store)
    if not root.is_dir():
        raise UsageError(f"STORE = {args.store!r}: no such run store")
    page = write_index(root)
    con = out_console()
    if args.serve is not None:
        return _serve(root, args.serve)
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if not args.no_open and has_display:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())
    con.print(str(page.resolve()), highlight=False)
    return 0


def _serve(root: Path, port: int) -> int:
    import functools
    import http.server

    if not 0 < port < 65536:
        raise UsageError(f"--serve = {port}: a port in 1..65535")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        out_console().print(f"serving {root} on http://127.0.0.1:{port}/index.html (Ctrl-C stops)")
        httpd.serve_forever()
    return 0
