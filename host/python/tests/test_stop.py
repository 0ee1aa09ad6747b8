"""stop() leaves nothing behind: no thread, no socket, no descriptor; pending calls fail."""

import asyncio
import gc
import subprocess
import sys

import pytest

import kad
from conftest import bounded, census


async def baseline():
    """The census once one server has run: its first runtime makes tokio's process-wide signal
    socket pair (kad-host's tokio has the `signal` feature), made once, never again."""
    s = kad.Server()
    await s.listen(0)
    s.stop()
    return census()


@bounded(30)
async def test_stop_leaves_no_thread_and_no_socket_behind(new_server):
    threads, fds = await baseline()
    servers = []
    for _ in range(5):
        s = new_server()
        await s.listen(0)
        servers.append(s)
    for s in servers[1:]:
        await s.bootstrap([servers[0].address])
    assert await servers[-1].set("k", "v")
    assert await servers[1].get("k") == "v"
    running_threads, running_fds = census()
    assert running_threads == threads + 5  # one thread per node
    sockets = [t for t in running_fds.values() if t.startswith("socket:")]
    assert len(sockets) >= len([t for t in fds.values() if t.startswith("socket:")]) + 5
    ports = [s.address[1] for s in servers]

    for s in servers:
        s.stop()
    assert census() == (threads, fds)
    # The ports are free again.
    for port in ports:
        again = new_server()
        await again.listen(port)
        again.stop()
    assert census() == (threads, fds)


@bounded(30)
async def test_a_server_dropped_without_stop_is_stopped_by_the_garbage_collector():
    threads, fds = await baseline()
    s = kad.Server()
    await s.listen(0)
    assert census()[0] == threads + 1
    del s
    gc.collect()
    assert census() == (threads, fds)


@bounded(30)
async def test_calls_pending_at_stop_raise_kaderror(new_server):
    a, b = new_server(), new_server()
    await a.listen(0)
    await b.listen(0)
    await a.bootstrap([b.address])
    b.stop()  # a's only peer goes silent: a's lookups wait for timeouts
    pending = asyncio.create_task(a.get("never answered"))
    await asyncio.sleep(0.1)
    assert not pending.done()
    a.stop()
    with pytest.raises(kad.KadError, match="the node has stopped"):
        await pending


@bounded(30)
async def test_a_call_cancelled_in_flight_leaves_the_server_usable(new_server):
    a, b, gone = new_server(), new_server(), new_server()
    for s in (a, b, gone):
        await s.listen(0)
    await a.bootstrap([b.address])
    await gone.bootstrap([b.address])
    await a.bootstrap([b.address])  # a learns of `gone` through b
    gone.stop()  # lookups now wait for its timeouts
    slow = asyncio.create_task(a.get("never stored"))
    await asyncio.sleep(0.1)
    assert not slow.done()
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert await a.set("k", "v") is True
    assert await b.get("k") == "v"


def test_a_program_that_never_calls_stop_exits_promptly_and_cleanly():
    # Servers still referenced at exit are stopped by the module's atexit hook.
    program = (
        "import asyncio, kad\n"
        "servers = [kad.Server(), kad.Server()]\n"
        "async def main():\n"
        "    a, b = servers\n"
        "    await a.listen(0)\n"
        "    await b.listen(0)\n"
        "    await b.bootstrap([a.address])\n"
        "    print(await b.set('k', 'v'))\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "True", "")
