"""``raiiaf serve DIR``: the archive browser as a small local web server, for webui users and
anyone without ComfyUI. One static page (no build step, nothing downloaded) and the JSON API
of :mod:`raiiaf_rs.archive_api`; "Regenerate" there gives the webui replay's inputs and the
command line (:mod:`raiiaf_rs.regenerate`).

The catalog (``raiiaf index``'s Parquet) and the thumbnails live in a cache folder (default
``~/.cache/raiiaf-rs/archive/<hash of DIR>``); the catalog is brought up to date at start
(incrementally: only new and changed files are read) and by the page's "Re-index" button.
Only files under DIR are ever read. Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from raiiaf_rs import archive_api, regenerate
from raiiaf_rs.archive import Archive, ArchiveError


def _extra(archive: Archive, name: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The webui replay's inputs and command line for the file ``name``."""
    path = archive.path_of(name)
    return {"regenerate": regenerate.webui(path, name, archive.metadata(name))}


def make_handler(archive: Archive) -> type[BaseHTTPRequestHandler]:
    """The request handler class serving ``archive``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "raiiaf-serve"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: one line per thumbnail would drown the console

        def _send(self, status: int, ctype: str, body: bytes, cache: str = "no-store") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _route(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            if method == "GET" and url.path in ("/", "/index.html"):
                page = archive_api.asset("archive.html")
                self._send(200, "text/html; charset=utf-8", page)
                return
            if not url.path.startswith(archive_api.PREFIX):
                self._send(404, "text/plain", b"not found")
                return
            params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            route = url.path[len(archive_api.PREFIX) :]
            status, ctype, body = archive_api.handle(archive, method, route, params, _extra)
            # A thumbnail is named by its file; it changes only when the file does.
            cache = "max-age=300" if route == "thumbnail" and status == 200 else "no-store"
            self._send(status, ctype, body, cache)

        def do_GET(self) -> None:  # http.server's names
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler


def default_cache(folder: str) -> str:
    """The cache folder of the archive ``folder``: one per directory served."""
    digest = hashlib.sha256(os.path.realpath(folder).encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "raiiaf-rs", "archive", digest)


def serve(archive: Archive, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A started server for ``archive`` (serving in a daemon thread); ``server_address``
    holds the port when ``port`` is 0."""
    server = ThreadingHTTPServer((host, port), make_handler(archive))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    """``raiiaf serve DIR [--port N] [--host ADDR] [--catalog FILE] [--cache DIR] [--no-index]``."""
    parser = argparse.ArgumentParser(
        prog="raiiaf serve",
        description="Browse, search and regenerate the .raiiaf files under DIR in a web page.",
    )
    parser.add_argument("folder", metavar="DIR", help="the folder of .raiiaf files to browse")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    parser.add_argument("--catalog", help="the catalog file (default: in the cache folder)")
    parser.add_argument("--cache", help="cache folder (default ~/.cache/raiiaf-rs/archive/…)")
    parser.add_argument(
        "--no-index",
        action="store_true",
        help="use the catalog as it is (do not re-index DIR at start)",
    )
    parser.add_argument(
        "--thumbnail-cache-mb", type=int, default=256, help="bound of the thumbnail cache"
    )
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.folder)
    if not os.path.isdir(folder):
        print(f"raiiaf serve: {args.folder}: no such directory", file=sys.stderr)
        return 2
    cache = args.cache or default_cache(folder)
    archive = Archive(
        args.catalog or os.path.join(cache, "catalog.parquet"),
        [("", folder)],
        cache_dir=cache,
        thumbnail_bytes=args.thumbnail_cache_mb << 20,
        where=f"the folder {args.folder}",
    )
    if not args.no_index:
        report = archive.index()
        print(
            f"raiiaf serve: {report['files']} files ({report['read']} read, "
            f"{report['reused']} unchanged, {report['errors']} unreadable)",
            flush=True,
        )
    else:
        try:
            archive.table()
        except ArchiveError as e:
            print(f"raiiaf serve: {e} (drop --no-index)", file=sys.stderr)
            return 2
    server = serve(archive, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"raiiaf serve: http://{host}:{port}/ (Ctrl+C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0
