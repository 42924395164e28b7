"""The nginx configuration in front of N instances: one template, rendered here and only here.

`deploy/nginx/punchline.conf.template` is the http-context file (upstream, limits, proxying);
`deploy/nginx/standalone.conf.template` wraps it into a whole nginx.conf whose pid, logs and
temporary files stay in one folder (`make run-cluster`, tests/cluster/test_nginx.py).

    python -m deploy.nginx_config --listen 80 --upstream 10.0.0.5:8000 --upstream 10.0.0.6:8000
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "nginx"
SITE_TEMPLATE = TEMPLATES / "punchline.conf.template"
STANDALONE_TEMPLATE = TEMPLATES / "standalone.conf.template"
_FIELD = re.compile(r"\{\{(\w+)\}\}")
_ADDRESS = re.compile(r"^(?:[\w.-]+|\[[0-9a-fA-F:]+\]):\d{1,5}$")
_LISTEN = re.compile(r"^(?:(?:[\w.-]+|\[[0-9a-fA-F:]+\]):)?\d{1,5}$")

# Engine.IO's max_http_buffer_size (python-engineio's default, which the app keeps): the
# largest body a polling POST may carry. Every other body (admin forms) is far smaller.
ENGINEIO_MAX_BODY = "1m"


@dataclass(frozen=True)
class Site:
    """What varies between deployments; the rest of the configuration is the template's."""

    listen: str  # "8000", "127.0.0.1:8000" or "[::1]:8000"
    upstreams: Sequence[str]  # instances as "host:port"
    max_header_bytes: int = 65536  # the app's HTTP_MAX_HEADER_BYTES
    max_body: str = "64k"  # REST and admin forms
    max_socket_body: str = ENGINEIO_MAX_BODY
    socket_timeout: str = "75s"  # above Engine.IO's ping interval + timeout (25 + 20 s)
    max_fails: int = 1
    fail_timeout: str = "10s"

    def __post_init__(self) -> None:
        if not _LISTEN.match(self.listen):
            raise ValueError(f"listen must be PORT or HOST:PORT, not {self.listen!r}")
        if not self.upstreams:
            raise ValueError("at least one upstream instance is needed")
        for address in self.upstreams:
            if not _ADDRESS.match(address):
                raise ValueError(f"an upstream is HOST:PORT, not {address!r}")
        if len(set(self.upstreams)) != len(self.upstreams):
            raise ValueError(f"an upstream is listed twice: {list(self.upstreams)}")
        if self.max_header_bytes < 1024:
            raise ValueError(f"max_header_bytes must be at least 1024, not {self.max_header_bytes}")
        if self.max_fails < 1:
            raise ValueError(f"max_fails must be at least 1, not {self.max_fails}")


def fill(template: str, fields: Mapping[str, str]) -> str:
    """Replace each ``{{name}}``; a field the template lacks or leaves unfilled is an error."""
    wanted = set(_FIELD.findall(template))
    if missing := wanted - fields.keys():
        raise ValueError(f"template fields without a value: {sorted(missing)}")
    if unused := fields.keys() - wanted:
        raise ValueError(f"values for no template field: {sorted(unused)}")
    return _FIELD.sub(lambda match: fields[match.group(1)], template)


def render_site(site: Site) -> str:
    """The http-context file: include it from nginx.conf's http block."""
    servers = "\n".join(
        f"    server {address} max_fails={site.max_fails} fail_timeout={site.fail_timeout};"
        for address in site.upstreams)
    return fill(SITE_TEMPLATE.read_text(), {
        "servers": servers,
        "listen": site.listen,
        "max_header_bytes": str(site.max_header_bytes),
        "max_body": site.max_body,
        "max_socket_body": site.max_socket_body,
        "socket_timeout": site.socket_timeout,
    })


def write_standalone(site: Site, prefix: Path) -> Path:
    """A whole nginx.conf in ``prefix`` (with the site file and a tmp folder); its path.

    Start it with ``nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/error.log -g 'daemon off;'``
    (`nginx_command`): nothing is written outside ``prefix``.
    """
    prefix = prefix.resolve()
    if any(c.isspace() or c in ";{}'\"" for c in str(prefix)):
        raise ValueError(f"nginx cannot take this folder unquoted: {prefix}")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    (prefix / "punchline.conf").write_text(render_site(site))
    conf = prefix / "nginx.conf"
    conf.write_text(fill(STANDALONE_TEMPLATE.read_text(), {"prefix": str(prefix)}))
    return conf


def nginx_command(nginx: str, conf: Path) -> list[str]:
    """The foreground nginx of a standalone configuration (its error log before it is read)."""
    prefix = conf.parent
    return [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
            "-g", "daemon off;"]


def main(argv: list[str] | None = None) -> None:
    from app.core.config import get_settings

    parser = argparse.ArgumentParser(prog="python -m deploy.nginx_config",
                                     description="Print the nginx site file for N instances.")
    parser.add_argument("--listen", default="80", help="PORT or HOST:PORT (default 80)")
    parser.add_argument("--upstream", action="append", required=True,
                        help="an instance's HOST:PORT; repeat for each")
    args = parser.parse_args(argv)
    site = Site(args.listen, args.upstream,
                max_header_bytes=get_settings().http_max_header_bytes)
    sys.stdout.write(render_site(site))


if __name__ == "__main__":
    main()
