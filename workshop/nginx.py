"""Run a step's deploy/nginx.conf with a real nginx, as a user, on any port.

    with NginxServer(project_dir, upstream_port=8000) as proxy:
        proxy.url    # http://127.0.0.1:<free port>, proxied to 127.0.0.1:8000

nginx normally runs as root from /etc/nginx. Here it runs from a folder of
its own (its pid file, logs and temporary files), in the foreground, with the
site file's addresses replaced by the ports asked for. Nothing is installed
and nothing outside that folder is written.
"""
import re
import shutil
import tempfile
from pathlib import Path

from .servers import ServerProcess

HOW_TO_GET_NGINX = """\
These tests need nginx on PATH (the proxy of steps 5 on).
  Debian/Ubuntu:  sudo apt-get install nginx
  Fedora:         sudo dnf install nginx
  macOS:          brew install nginx
It is only run by the tests and `make step5-nginx`, as you, on free ports."""

# The lines of deploy/nginx.conf that this module rewrites, with what they say there.
SITE_UPSTREAM = "server 127.0.0.1:8000;"
SITE_LISTEN = "listen 8080"  # the chat's server, and the default one
SITE_READ_TIMEOUT = re.compile(r"proxy_read_timeout \S+;")

MAIN_CONFIG = """\
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_processes 1;
events {{ worker_connections 4096; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/site.conf;
}}
"""


def find_nginx():
    """Path of the nginx binary, or None (Debian keeps it in /usr/sbin)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def site_config(site_file, listen_port, upstream_port, read_timeout=None):
    """The site file's text, listening and proxying on the given ports."""
    text = Path(site_file).read_text()
    for line in (SITE_UPSTREAM, SITE_LISTEN):
        if line not in text:
            raise ValueError(f"{site_file} has no line {line!r} to point elsewhere")
    text = text.replace(SITE_UPSTREAM, f"server 127.0.0.1:{upstream_port};")
    text = text.replace(SITE_LISTEN, f"listen 127.0.0.1:{listen_port}")
    if read_timeout is not None:
        text = SITE_READ_TIMEOUT.sub(f"proxy_read_timeout {read_timeout};", text)
    return text


class NginxServer(ServerProcess):
    """nginx with a step's deploy/nginx.conf, in front of a server on upstream_port."""

    name = "nginx"

    def __init__(self, project_dir, upstream_port, port=None, read_timeout=None):
        super().__init__(port)
        self.site_file = Path(project_dir) / "deploy" / "nginx.conf"
        self.upstream_port = upstream_port
        self.read_timeout = read_timeout

    def command(self):
        binary = find_nginx()
        if binary is None:
            raise RuntimeError(HOW_TO_GET_NGINX)
        self._cleanup()
        self._prefix = tempfile.TemporaryDirectory(prefix="workshop-nginx-")
        prefix = Path(self._prefix.name)
        # Run as root (CI), nginx's workers drop to an unprivileged user:
        # let them into this folder.
        prefix.chmod(0o755)
        (prefix / "site.conf").write_text(
            site_config(self.site_file, self.port, self.upstream_port, self.read_timeout)
        )
        (prefix / "nginx.conf").write_text(MAIN_CONFIG.format(prefix=prefix))
        return [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                "-e", str(prefix / "error.log")]

    def log(self):
        """What nginx printed, then its error log."""
        prefix = getattr(self, "_prefix", None)
        error_log = Path(prefix.name) / "error.log" if prefix else None
        errors = error_log.read_text(errors="replace") if error_log and error_log.exists() else ""
        return super().log() + errors

    def _cleanup(self):
        if getattr(self, "_prefix", None) is not None:
            self._prefix.cleanup()
            self._prefix = None

    def __exit__(self, *exc_info):
        super().__exit__(*exc_info)
        self._cleanup()

