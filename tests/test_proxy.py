"""The dashboard behind a real nginx (Debian's package), in the layouts a
robot builder uses: the whole site, the stream on `location /ws`, a sub-path,
and TLS with the shipped deploy/nginx/anse-hw.conf (wss:// in Chromium)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import (
    ROOT,
    PortTaken,
    fast_sim_config,
    on_free_ports,
    open_page,
    operator_url,
    serves,
    text,
    wait_for,
)

pytestmark = pytest.mark.browser

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY = ROOT / "deploy" / "nginx"

#: What every test server block passes on; the shipped files say the same.
PROXY = """
        proxy_pass http://127.0.0.1:{daemon};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_buffering off;"""
UPGRADE = """
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;"""

LAYOUTS = {
    # Everything proxied, the upgrade allowed everywhere.
    "root": "location / {" + PROXY + UPGRADE + "\n    }",
    # The usual tutorial: plain proxying, and the upgrade on /ws only.
    "ws": "location / {" + PROXY + "\n    }\n    location /ws {" + PROXY + UPGRADE + "\n    }",
}


def adapted(path: Path, replacements: dict[str, str]) -> str:
    """A shipped file with test ports and paths; every line it expects must be
    there, so an edit to the shipped file cannot silently skip this test."""
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text, f"{path.name} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx as a child process with its own prefix and config, listening on
    `ports` (PortTaken if another process bound one of them first)."""

    def __init__(self, directory: Path, servers: str, ports: tuple[int, ...]) -> None:
        self.directory = directory
        self.ports = ports
        for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (directory / temp).mkdir(parents=True, exist_ok=True)
        temps = "\n".join(
            f"    {kind}_temp_path {directory / name};"
            for kind, name in (
                ("client_body", "body"),
                ("proxy", "proxy"),
                ("fastcgi", "fastcgi"),
                ("uwsgi", "uwsgi"),
                ("scgi", "scgi"),
            )
        )
        # As root, workers would switch to nobody, who cannot enter pytest's tmp.
        user = "user root;" if os.geteuid() == 0 else ""
        conf = directory / "nginx.conf"
        conf.write_text(
            f"""daemon off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log off;
{temps}
    include {DEPLOY / "websocket-upgrade.conf"};
{servers}
}}
"""
        )
        check = subprocess.run(
            [
                NGINX,
                "-t",
                "-q",
                "-p",
                str(directory),
                "-e",
                str(directory / "error.log"),
                "-c",
                str(conf),
            ],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        errors = directory / "error.log"
        errors.write_text("")
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(directory), "-e", str(errors), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        pid_file = directory / "nginx.pid"

        def bound() -> bool:
            """nginx writes its pid file once its ports are bound; it gives up
            on a port in use after a few seconds of retrying."""
            if self.proc.poll() is not None:
                if "Address already in use" in errors.read_text():
                    raise PortTaken(errors.read_text())
                raise AssertionError(errors.read_text())
            return pid_file.exists() and pid_file.read_text().strip() == str(self.proc.pid)

        try:
            wait_for(bound, 30, "nginx to bind its ports")
        except AssertionError:
            self.stop()
            raise

    def wait_serving(self, url: str) -> None:
        context = ssl._create_unverified_context()

        def answers() -> bool:
            assert self.proc.poll() is None, (self.directory / "error.log").read_text()
            return serves(url, context)

        wait_for(answers, 30, f"nginx to serve {url}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def nginx(tmp_path):
    """`start(servers, ports)`: nginx with the server blocks `servers(*ports)`
    on `ports` free ports, other ones if a port was taken first."""
    started: list[Nginx] = []

    def start(servers: Callable[..., str], ports: int = 1) -> Nginx:
        def on(*chosen: int) -> Nginx:
            made = Nginx(tmp_path / f"nginx{len(started)}", servers(*chosen), chosen)
            started.append(made)
            return made

        return on_free_ports(on, ports)

    yield start
    for server in started:
        server.stop()


def shows_live_data(page, url: str, stream: str) -> None:
    """Connected through the proxy, at the stream address the page worked out,
    and readings keep changing."""
    page.goto(url)
    page.wait_for_selector("#connection[data-state=connected]")
    assert text(page, "#stat-url") == stream
    value = "[data-panel='sensor:distance_sensor'] .value"
    page.wait_for_selector(value)
    first = text(page, value)
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).textContent !== old", arg=[value, first]
    )
    assert page.errors == []


@pytest.mark.parametrize("layout", ["root", "ws"])
def test_dashboard_through_nginx(layout, start_daemon, nginx, page):
    daemon = start_daemon(fast_sim_config(0, interval=0.1)).port
    locations = LAYOUTS[layout].replace("{daemon}", str(daemon))
    proxy = nginx(lambda web: f"server {{\n    listen 127.0.0.1:{web};\n    {locations}\n}}")
    (web,) = proxy.ports
    proxy.wait_serving(f"http://127.0.0.1:{web}/healthz")
    shows_live_data(page, f"http://127.0.0.1:{web}/", f"ws://127.0.0.1:{web}/ws")


def test_dashboard_under_a_sub_path_with_the_shipped_snippet(start_daemon, nginx, page, tmp_path):
    daemon = start_daemon(fast_sim_config(0, interval=0.1)).port
    snippet = tmp_path / "anse-hw-subpath.conf"
    snippet.write_text(
        adapted(DEPLOY / "anse-hw-subpath.conf", {"127.0.0.1:8000": f"127.0.0.1:{daemon}"})
    )
    # Another site owns the root: nothing of the robot's may be fetched there.
    proxy = nginx(
        lambda web: (
            f"server {{\n    listen 127.0.0.1:{web};\n    location / {{ return 404; }}\n"
            f"    include {snippet};\n}}"
        )
    )
    (web,) = proxy.ports
    proxy.wait_serving(f"http://127.0.0.1:{web}/robot/healthz")
    shows_live_data(page, f"http://127.0.0.1:{web}/robot", f"ws://127.0.0.1:{web}/robot/ws")
    assert page.url == f"http://127.0.0.1:{web}/robot/"


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_with_the_shipped_site_file_and_an_operator_stop(
    start_daemon, nginx, browser, tmp_path
):
    """wss:// through the shipped anse-hw.conf; the operator logs in with the
    printed URL (port swapped for the proxy's), gets a Secure cookie, and the
    E-STOP goes through the proxy."""
    daemon = start_daemon(fast_sim_config(0, interval=0.1))
    cert, key = self_signed(tmp_path)

    def site(web: int, plain: int) -> str:
        return adapted(
            DEPLOY / "anse-hw.conf",
            {
                "    listen [::]:80;\n": "",
                "    listen [::]:443 ssl;\n": "",
                "listen 80;": f"listen 127.0.0.1:{plain};",
                "listen 443 ssl;": f"listen 127.0.0.1:{web} ssl;",
                "/etc/ssl/anse-hw/cert.pem": str(cert),
                "/etc/ssl/anse-hw/key.pem": str(key),
                "127.0.0.1:8000": f"127.0.0.1:{daemon.port}",
            },
        )

    proxy = nginx(site, ports=2)
    web, plain = proxy.ports
    proxy.wait_serving(f"https://127.0.0.1:{web}/healthz")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(f"http://127.0.0.1:{plain}/", timeout=5)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"].startswith("https://127.0.0.1")

    page = open_page(browser, ignore_https_errors=True)
    try:
        printed = operator_url(daemon)
        token_query = printed[printed.index("/?token=") :]
        shows_live_data(page, f"https://127.0.0.1:{web}{token_query}", f"wss://127.0.0.1:{web}/ws")
        page.wait_for_selector("#operator[data-operator=true]")
        cookies = page.context.cookies()
        assert cookies and all(c["secure"] and c["httpOnly"] for c in cookies)
        page.click("#estop-button")
        page.wait_for_selector("#latch-banner:not([hidden])")
        assert "LATCHED" in text(page, "#operator-text")
        assert page.errors == []
    finally:
        page.context.close()
