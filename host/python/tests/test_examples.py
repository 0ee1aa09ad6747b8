"""The `kademlia` documentation's three examples, as the package README gives them (only the
import line changed), run as scripts against each other and against the `kad` command, in a
network namespace of their own (the examples use fixed ports; root is needed, as for the
embedded tests)."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import KAD_BIN

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
FIRST_PORT = 8468  # the examples' own ports


def example(name):
    blocks = dict(re.findall(r"```python (\S+)\n(.*?)```", README.read_text(), re.S))
    return blocks[name]


@pytest.fixture
def netns():
    """A network namespace with loopback up; yields the prefix that runs a command in it."""
    name = f"kad-python-examples-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def udp_bound(ns, port):
    """Whether a socket in the namespace is bound to UDP `port` on IPv4."""
    table = subprocess.run([*ns, "cat", "/proc/net/udp"], capture_output=True, text=True, check=True).stdout
    return any(int(line.split()[1].split(":")[1], 16) == port for line in table.splitlines()[1:])


def test_the_examples_differ_from_kademlias_by_their_import_only():
    for name in ("first_node.py", "set.py", "get.py"):
        code = example(name)
        assert "from kad import Server\n" in code
        assert "kademlia.network" not in code


def test_first_node_set_and_get_examples_form_a_network(tmp_path, netns):
    scripts = {}
    for name in ("first_node.py", "set.py", "get.py"):
        scripts[name] = tmp_path / name
        scripts[name].write_text(example(name))
    first = subprocess.Popen(
        [*netns, sys.executable, str(scripts["first_node.py"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not udp_bound(netns, FIRST_PORT):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "first_node.py did not listen within 20 s"
            time.sleep(0.05)

        seed = ["127.0.0.1", str(FIRST_PORT)]
        run = lambda *args: subprocess.run(  # noqa: E731
            [*netns, sys.executable, *args], capture_output=True, text=True, timeout=60
        )
        kad = lambda *args: subprocess.run(  # noqa: E731
            [*netns, KAD_BIN, *args], capture_output=True, text=True, timeout=60
        )
        s = run(str(scripts["set.py"]), *seed, "my-key", "my awesome value")
        assert s.returncode == 0, s.stderr
        g = run(str(scripts["get.py"]), *seed, "my-key")
        assert g.returncode == 0, g.stderr
        assert g.stdout.strip() == "Get result: my awesome value"
        assert run(str(scripts["get.py"])).stdout.startswith("Usage: python get.py")

        # The `kad` command reads what the Python example stored, and the other way round.
        assert kad("get", "--bootstrap", f"127.0.0.1:{FIRST_PORT}", "my-key").stdout.strip() == "my awesome value"
        p = kad("put", "--bootstrap", f"127.0.0.1:{FIRST_PORT}", "from-kad", "hello from kad")
        assert p.returncode == 0, p.stderr
        g = run(str(scripts["get.py"]), *seed, "from-kad")
        assert g.stdout.strip() == "Get result: hello from kad", g.stderr
    finally:
        # The example stops its server on KeyboardInterrupt (`ip netns exec` execs python).
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    assert not udp_bound(netns, FIRST_PORT)
