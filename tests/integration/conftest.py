"""Shared fixtures for the integration tests: they start the real binary (ASan build by default,
LIGHTR_BIN overrides) on loopback ports in a temporary directory."""
import os
import re
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bin():
    return os.environ.get("LIGHTR_BIN", os.path.join(ROOT, "build", "san", "lightr"))


@pytest.fixture
def lightr_bin():
    path = _bin()
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built (make san)")
    return path


@pytest.fixture
def tmpdir_world():
    """A temporary directory that the service user can traverse: when the tests run as root the
    server and the CLI drop to user 'lightr' (make deps creates it)."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("lightr")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", "lightr"], check=True)
    d = tempfile.mkdtemp(prefix="lightr-test-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_handed_out = set()


def free_port():
    """A loopback port nobody listens on, never the same one twice in this test run (the kernel
    may hand out a just-closed ephemeral port again, which gave two listeners one port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def config_defaults(extra):
    """extra plus the defaults every test config gets unless it sets the section itself."""
    # The rate limits of issue 8 would get in the way of tests that send many messages from one
    # account or client; the tests of the limits themselves set their own "limits:" section.
    if not re.search(r"^limits:", extra, re.M):
        extra += ("limits:\n"
                  "  account: {messages_per_minute: 0, messages_per_hour: 0,"
                  " messages_per_day: 0, recipients_per_day: 0}\n"
                  "  domain: {messages_per_minute: 0, messages_per_hour: 0,"
                  " messages_per_day: 0, recipients_per_day: 0}\n"
                  "  ip: {connections_per_minute: 0, messages_per_minute: 0,"
                  " recipients_per_minute: 0}\n"
                  "  auth: {delay_after: 1000, lockout_after: 10000}\n"
                  "  api: {requests_per_second: 0}\n")
    # Inbound SPF/DKIM/DMARC (issue 9) asks DNS about every sender; tests that do not serve
    # those names from a DNS server on loopback turn it off (the tests of the checks set their
    # own "inbound:" section with dns.forwarders).
    if not re.search(r"^inbound:", extra, re.M):
        extra += "inbound: {authenticate: false}\n"
    return extra


def write_config(directory, extra="", ports=None, name="lightr.yaml"):
    """Writes a config with every listener on a free loopback port; returns (path, ports)."""
    ports = ports or {r: free_port() for r in
                      ("mx", "submission", "submissions", "imap", "imaps", "http")}
    lines = [
        "hostname: mail.test.example",
        f"data_dir: {directory}/data",
        "listeners:",
    ]
    for role, port in ports.items():
        lines.append(f'  - {{role: {role}, address: "127.0.0.1:{port}"}}')
    extra = config_defaults(extra)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)
    os.chmod(path, 0o644)
    return path, ports


def run(lightr_bin, *args, config=None, stdin=None, cwd=None, env=None, timeout=60):
    """Runs one CLI command; returns CompletedProcess with text output."""
    cmd = [lightr_bin] + (["-c", config] if config else []) + list(args)
    e = dict(os.environ)
    e.pop("LIGHTR_CONFIG", None)
    if env:
        e.update(env)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=cwd, env=e,
                          timeout=timeout)


def wait_port(port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    """A running `lightr serve`; its log goes to a file read by log()."""

    def __init__(self, lightr_bin, config=None, cwd=None, wait_for=None):
        self.logpath = os.path.join(cwd or tempfile.gettempdir(), f"serve-{os.getpid()}-{time.monotonic_ns()}.log")
        self.logf = open(self.logpath, "w")
        cmd = [lightr_bin] + (["-c", config] if config else []) + ["serve"]
        env = dict(os.environ)
        env.pop("LIGHTR_CONFIG", None)
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, cwd=cwd,
                                     env=env)
        if wait_for is not None and not wait_port(wait_for):
            self.stop()
            raise AssertionError("server did not start:\n" + self.log())

    def log(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.logpath) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


@pytest.fixture
def server_factory(lightr_bin):
    started = []

    def start(config=None, cwd=None, wait_for=None):
        s = Server(lightr_bin, config=config, cwd=cwd, wait_for=wait_for)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
