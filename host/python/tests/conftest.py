"""Shared helpers: async tests with a time bound, `kad` processes on loopback, process census."""

import asyncio
import functools
import os
import pathlib
import queue
import signal
import subprocess
import threading
import time

import pytest

import kad

# A runner may start the tests with SIGINT ignored (a background job of a non-interactive shell
# is), and an ignored signal is inherited: the examples, which stop on Ctrl-C, would never see
# it. Catching it here gives every child the default disposition again.
signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = pathlib.Path(__file__).resolve().parents[3]
KAD_BIN = os.environ.get("KAD_BIN") or str(REPO / "target" / "release" / "kad")


def bounded(seconds):
    """Runs an async test on a fresh event loop and fails it after `seconds`."""

    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            asyncio.run(asyncio.wait_for(test(*args, **kwargs), seconds))

        return run

    return decorate


def kad_cli(*args, timeout=60):
    """Runs `kad ARGS` to completion; returns (exit code, stdout, stderr)."""
    p = subprocess.run([KAD_BIN, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class KadProcess:
    """A `kad node` or `kad provide` process, started when it printed a line starting with `ready`."""

    def __init__(self, command, *args, ready="kad node ", timeout=20):
        if not os.access(KAD_BIN, os.X_OK):
            raise RuntimeError(f"no kad binary at {KAD_BIN}: build it or set KAD_BIN")
        self.proc = subprocess.Popen(
            [KAD_BIN, command, "--memory", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=lambda: [self.lines.put(line.strip()) for line in self.proc.stdout])
        self.reader.start()
        seen = []
        deadline = time.monotonic() + timeout
        while not any(line.startswith(ready) for line in seen):
            try:
                seen.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                self.stop()
                raise TimeoutError(f"kad {command} printed no {ready!r} within {timeout} s: {seen}") from None
        # "kad node <id> listening on udp <ip:port>"
        first = next(line for line in seen if line.startswith("kad node "))
        self.id = first.split()[2]
        host, port = first.split()[-1].rsplit(":", 1)
        self.addr = (host, int(port))
        self.seed = f"{host}:{port}"

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)  # the pipe is closed: the reader ends


@pytest.fixture
def kad_processes():
    """Starts `kad` processes with `start(command, *args)`; kills them after the test."""
    started = []

    def start(command="node", *args, **kwargs):
        p = KadProcess(command, *args, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def new_server():
    """Makes `kad.Server(**kwargs)`; stops every one after the test, passed or failed."""
    made = []

    def make(**kwargs):
        made.append(kad.Server(**kwargs))
        return made[-1]

    yield make
    for s in made:
        s.stop()


async def network(new_server, n, **kwargs):
    """`n` listening servers on loopback, all bootstrapped from the first."""
    servers = []
    for _ in range(n):
        s = new_server(**kwargs)
        await s.listen(0)
        servers.append(s)
    for s in servers[1:]:
        await s.bootstrap([servers[0].address])
    return servers


def census():
    """The threads and open file descriptors of this process."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the descriptor listdir itself used
            pass
    return len(os.listdir("/proc/self/task")), fds
