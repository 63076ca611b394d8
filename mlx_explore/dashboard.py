"""``mlx-explore dashboard``: serve the Voila dashboards of ``notebooks/dashboards/`` for people who never
read code.

The pages (``DASHBOARDS``): ``overview`` (for a manager: the recommendation for a scenario and its
reasons, the newest suite's results, trends over time, the claims audit, where time goes), ``run``
(for an engineer: the ComparisonPanel with live curves) and ``history`` (the ResultsExplorer over the
whole store).

How they are served (:func:`serve`):

* Voila (https://voila.readthedocs.io) in a child process, in its own process group, with this
  project's template ``mlx`` (Voila's ``lab`` without links to CDNs: nothing is fetched from the
  internet), ``strip_sources`` on (no code on the page) and ``show_tracebacks`` off (an exception
  in a cell shows Voila's short error message, not a traceback; the dashboards themselves turn the
  errors they expect, such as a corrupt store, into a sentence).
* On ``127.0.0.1`` and a free port by default. Any other ``--ip`` is an explicit choice: a warning is
  printed and a random token is required (Jupyter server token authentication; the printed URLs
  carry it). On loopback no token is asked, as for ``voila`` itself: only this machine's users reach
  the port.
* The store: the kernels get ``$MLX_EXPLORE_DB`` (``--db``, resolved to an absolute path). The
  overview and history pages read it read-only (``results.READ_ONLY_VAR``, SQLite ``mode=ro``); only
  an explicit action writes (the run page's Run button, the overview's "run the small suite"
  button on an empty store).
* Ctrl-C (SIGINT), SIGTERM or SIGHUP stop Voila, which shuts its kernels down; whatever of Voila's
  process tree is still alive after :data:`GRACE_S` is killed, so no kernel is left behind.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: The dashboards, in the order they are listed: name -> what it is for.
DASHBOARDS = {
    "overview": "which framework fits a scenario and why, with the numbers behind it",
    "run": "run a comparison with live training curves",
    "history": "every stored run: filter by model, data set, framework, device, date",
}
#: Seconds Voila gets to shut its kernels down after SIGTERM before its process tree is killed.
GRACE_S = 15.0
#: Seconds to wait for Voila to answer HTTP after it starts.
START_TIMEOUT_S = 120.0
LOOPBACK = "127.0.0.1"


class DashboardError(RuntimeError):
    """A dashboard server cannot be started: ``field`` is the CLI option at fault (``--port``,
    ``--ip``, ``--db``, ``dashboards``), ``message`` says why and what to do."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def folder() -> Path:
    """The folder of the dashboard notebooks: ``notebooks/dashboards`` of this checkout, else
    ``<prefix>/share/mlx-explore/dashboards`` (a wheel install copies them there, pyproject.toml).

    Raises:
        DashboardError: neither holds the notebooks (field ``dashboards``).
    """
    candidates = [Path(__file__).resolve().parents[1] / "notebooks" / "dashboards",
                  Path(sys.prefix) / "share" / "mlx-explore" / "dashboards"]  # fmt: skip
    for c in candidates:
        if all((c / f"{name}.ipynb").is_file() for name in DASHBOARDS):
            return c
    raise DashboardError("dashboards", "the dashboard notebooks were not found in " + " or ".join(map(str, candidates))
                         + ": reinstall mlx-explore (pip install mlx-explore[notebook]) or run from a clone")


def free_port(ip: str = LOOPBACK) -> int:
    """A TCP port nobody listens on at ``ip`` now (the kernel picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def check_ip(ip: str) -> bool:
    """Validate ``--ip``; returns True when it is a loopback address (only this machine reaches it).

    Raises:
        DashboardError: not an IPv4/IPv6 address (field ``--ip``).
    """
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        raise DashboardError("--ip", f"{ip!r} is not an IP address; use 127.0.0.1 (this machine only, the default) "
                                     f"or an address of this machine such as 0.0.0.0 (every interface)") from None


def check_port(ip: str, port: int | None) -> int:
    """The port to serve on: ``port`` if it is free at ``ip``, or a free one for ``None``.

    Raises:
        DashboardError: out of 1-65535, or in use (field ``--port``); ``ip`` is not this machine's
            (field ``--ip``).
    """
    if port is None:
        try:
            return free_port(ip)
        except OSError as e:
            raise DashboardError("--ip", f"cannot listen on {ip} ({e.strerror}): it is not an address of this machine; "
                                         f"use 127.0.0.1 (the default) or 0.0.0.0 (every interface)") from None
    if not 1 <= port <= 65535:
        raise DashboardError("--port", f"{port} is not a TCP port: use 1-65535, or leave --port out for a free one")
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        try:
            s.bind((ip, port))
        except OSError as e:
            raise DashboardError("--port", f"cannot listen on {ip}:{port} ({e.strerror}): another program uses it; "
                                           f"leave --port out to get a free port") from None
    return port


def check_db(db: str | Path | None) -> tuple[Path, str | None]:
    """The store the dashboards read, as an absolute path (``None``: ``$MLX_EXPLORE_DB`` or the
    default), and a warning when it cannot be read now. A missing file is fine (the overview offers
    to fill it); a corrupt or foreign file is served all the same and every page says what is wrong
    (it may be replaced while the server runs); only a folder is refused.

    Raises:
        DashboardError: the path is a folder (field ``--db``).
    """
    from .results import StoreError, default_path, load_runs

    path = (Path(db).expanduser() if db is not None else default_path()).resolve()
    if path.is_dir():
        raise DashboardError("--db", f"{path} is a folder; give the results store's file (e.g. {path / 'results.db'})")
    try:
        load_runs(path, last=0)
    except StoreError as e:
        return path, f"warning: {e} The pages will say so."
    return path, None


@dataclass
class Server:
    """A running dashboard server. ``urls``: dashboard name -> its URL (with the token when one is set)."""

    process: subprocess.Popen
    db: Path
    url: str
    token: str | None
    log: Path
    folder: Path
    warning: str | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def stop(self, grace: float = GRACE_S) -> int:
        """Stop Voila and everything it started (SIGTERM to its process group: Voila shuts its kernels
        down; after ``grace`` seconds, SIGKILL to what is left of its process tree). Returns Voila's
        exit code. Safe to call twice. The staged folder is removed."""
        import shutil

        code = stop_tree(self.process, grace)
        shutil.rmtree(self.folder, ignore_errors=True)
        return code


#: Where, in the staged folder, plotly's widget bundle is served from (``/voila/files/...``), and the
#: variable that tells the kernels' figures to import it from there (``widgets._common.PLOTLY_BUNDLE_VAR``).
BUNDLE_FILE = "_static/plotly-widgetbundle.js"
BUNDLE_VAR = "MLX_EXPLORE_PLOTLY_BUNDLE"


def stage(notebooks: Path, into: Path) -> Path:
    """Copy the dashboard notebooks and plotly's widget bundle (``plotly/package_data/widgetbundle.js``
    of the installed plotly, found without importing it) into the folder ``into``, which Voila serves.

    Why a copy: Voila serves only files under the folder it serves and refuses symbolic links that lead
    out of it, and the notebooks' own folder may be read-only (an installed wheel). With the bundle
    served as a file, every figure of a page imports it by URL, once (``widgets/_common.py``).

    Returns:
        ``into``. Raises DashboardError (field ``dashboards``) when plotly is not installed.
    """
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise DashboardError("dashboards", "plotly is not installed: pip install 'mlx-explore[notebook]'")
    bundle = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "widgetbundle.js"
    for name in DASHBOARDS:
        shutil.copy2(notebooks / f"{name}.ipynb", into / f"{name}.ipynb")
    if bundle.is_file():  # plotly 6+; older plotly has no such bundle and its figures load as before
        (into / BUNDLE_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(bundle, into / BUNDLE_FILE)
    return into


def voila_command(folder: Path, *, ip: str, port: int, token: str | None) -> list[str]:
    """The Voila command line for :func:`start`: template ``mlx``, no sources, no tracebacks, one
    pre-heated kernel per dashboard (the pages wait in it for their request, ``widgets.dashboard.wait_for_page``,
    so a page opens without waiting for a kernel to start and import), and plotly's bundle served."""
    allow = [r".*\.(png|jpg|gif|svg)", BUNDLE_FILE.replace(".", r"\.")]
    cmd = [sys.executable, "-m", "voila", str(folder), "--no-browser", "--template=mlx", f"--port={port}",
           f"--Voila.ip={ip}", "--Voila.port_retries=0", "--strip_sources=True", "--show_tracebacks=False",
           "--preheat_kernel=True", "--pool_size=1", f"--VoilaConfiguration.file_allowlist={allow!r}"]
    if token:
        cmd.append(f"--token={token}")
    return cmd


def start(db: str | Path | None = None, *, port: int | None = None, ip: str = LOOPBACK, log: Path | None = None,
          timeout: float = START_TIMEOUT_S) -> Server:  # fmt: skip
    """Start Voila on the dashboards and wait until it answers.

    Args:
        db: the results store (``None``: ``$MLX_EXPLORE_DB`` or ``~/.mlx_explore/results.db``).
        port: TCP port (``None``: a free one). ip: address to listen on (loopback by default; any
            other gets a random token).
        log: file for Voila's log (default: a temporary file).
        timeout: seconds to wait for Voila to answer [s].

    Raises:
        DashboardError: bad ``--ip``, ``--port`` or ``--db`` (checked before anything starts), the
            notebooks are missing, or Voila exits or does not answer in time (field ``voila``, with
            the end of its log).
    """
    import tempfile

    loopback = check_ip(ip)
    port = check_port(ip, port)
    path, warning = check_db(db)
    staged = stage(folder(), Path(tempfile.mkdtemp(prefix="mlx-explore-dashboards-")))
    token = None if loopback else secrets.token_urlsafe(24)
    if log is None:
        fd, name = tempfile.mkstemp(prefix="mlx-explore-dashboard-", suffix=".log")
        os.close(fd)
        log = Path(name)
    env = {**os.environ, "MLX_EXPLORE_DB": str(path)}
    env.pop("MLX_EXPLORE_READ_ONLY", None)  # each page decides: overview and history read read-only
    if (staged / BUNDLE_FILE).is_file():
        env[BUNDLE_VAR] = "../files/" + BUNDLE_FILE  # relative to a page, /voila/render/<name>.ipynb
    with open(log, "wb") as out:
        proc = subprocess.Popen(voila_command(staged, ip=ip, port=port, token=token), cwd=staged, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    host = LOOPBACK if ip in ("0.0.0.0", "::", "localhost") else ip
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    server = Server(proc, path, base, token, log, staged, warning)
    query = f"?token={token}" if token else ""
    server.urls = {name: f"{base}voila/render/{name}.ipynb{query}" for name in DASHBOARDS}
    try:
        _wait_http(base + query, proc, timeout, log)
    except BaseException:
        server.stop(grace=5)
        raise
    return server


def serve(db: str | Path | None = None, *, port: int | None = None, ip: str = LOOPBACK, open_browser: bool = False,
          say: Callable[[str], None] = print) -> int:  # fmt: skip
    """Start the dashboards (:func:`start`), print their URLs, and serve until Ctrl-C, SIGTERM or
    SIGHUP; then stop Voila and its kernels. Returns 0, or Voila's exit code if it ended by itself.

    Raises:
        DashboardError: as :func:`start`.
    """
    loopback = check_ip(ip)
    if not loopback:
        say(f"warning: --ip {ip} makes the dashboards reachable from other machines. They run code on this "
            f"machine (Run starts training), so a token is required: share the URLs below only with people you "
            f"trust, and prefer an SSH tunnel to 127.0.0.1.")  # fmt: skip
    stopping: list[int] = []

    def on_signal(signum, frame):
        stopping.append(signum)

    handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        server = start(db, port=port, ip=ip)
        say(f"mlx-explore dashboards on the results store {server.db}:")
        if server.warning:
            say(server.warning)
        for name, url in server.urls.items():
            say(f"  {name:9s} {url}    ({DASHBOARDS[name]})")
        say("Press Ctrl-C to stop the server and its kernels.")
        if open_browser:
            import webbrowser

            webbrowser.open(server.urls["overview"])
        while not stopping and server.process.poll() is None:
            time.sleep(0.2)
        code = server.process.poll()
        server.stop()
        say(f"stopped (Voila's log: {server.log})")
        return 0 if stopping or code is None else code
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


def stop_tree(proc: subprocess.Popen, grace: float = GRACE_S) -> int:
    """SIGTERM ``proc``'s process group, wait up to ``grace`` s, then SIGKILL every process that is
    still alive of its tree as it was before the SIGTERM (kernels run in their own sessions, so the
    group alone would miss them). Returns ``proc``'s exit code."""
    import psutil

    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _, alive = psutil.wait_procs(tree, timeout=max(1.0, grace / 3))
    for p in alive + ([psutil.Process(proc.pid)] if proc.poll() is None else []):
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return proc.wait()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DashboardError("voila", f"Voila exited with code {proc.returncode} before serving:\n{_tail(log)}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    raise DashboardError("voila", f"Voila did not answer {url} within {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path, chars: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
