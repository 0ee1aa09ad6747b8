"""The `kademlia` documentation's three examples, as the package README gives them (only the
import line changed), run as scripts against each other and against the `kad` command."""

import pathlib
import re
import signal
import subprocess
import sys
import time

from conftest import kad

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
FIRST_PORT = 8468  # the examples' own ports


def example(name):
    blocks = dict(re.findall(r"```python (\S+)\n(.*?)```", README.read_text(), re.S))
    return blocks[name]


def udp_bound(port):
    """Whether some socket of this machine is bound to UDP `port` on IPv4."""
    with open("/proc/net/udp") as f:
        return any(int(line.split()[1].split(":")[1], 16) == port for line in list(f)[1:])


def test_the_examples_differ_from_kademlias_by_their_import_only():
    for name in ("first_node.py", "set.py", "get.py"):
        code = example(name)
        assert "from kad import Server\n" in code
        assert "kademlia.network" not in code


def test_first_node_set_and_get_examples_form_a_network(tmp_path):
    assert not udp_bound(FIRST_PORT), f"UDP port {FIRST_PORT} is taken; the examples need it"
    scripts = {}
    for name in ("first_node.py", "set.py", "get.py"):
        scripts[name] = tmp_path / name
        scripts[name].write_text(example(name))
    first = subprocess.Popen(
        [sys.executable, str(scripts["first_node.py"])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not udp_bound(FIRST_PORT):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "first_node.py did not listen within 20 s"
            time.sleep(0.05)

        seed = ["127.0.0.1", str(FIRST_PORT)]
        run = lambda *args: subprocess.run(  # noqa: E731
            [sys.executable, *args], capture_output=True, text=True, timeout=60
        )
        s = run(str(scripts["set.py"]), *seed, "my-key", "my awesome value")
        assert s.returncode == 0, s.stderr
        g = run(str(scripts["get.py"]), *seed, "my-key")
        assert g.returncode == 0, g.stderr
        assert g.stdout.strip() == "Get result: my awesome value"
        assert run(str(scripts["get.py"])).stdout.startswith("Usage: python get.py")

        # The `kad` command reads what the Python example stored, and the other way round.
        assert kad("get", "--bootstrap", f"127.0.0.1:{FIRST_PORT}", "my-key")[1].strip() == "my awesome value"
        code, _, err = kad("put", "--bootstrap", f"127.0.0.1:{FIRST_PORT}", "from-kad", "hello from kad")
        assert code == 0, err
        g = run(str(scripts["get.py"]), *seed, "from-kad")
        assert g.stdout.strip() == "Get result: hello from kad", g.stderr
    finally:
        first.send_signal(signal.SIGINT)  # the example stops its server on KeyboardInterrupt
        out, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    assert not udp_bound(FIRST_PORT)
