"""The Python side of `kad bench`: the same workload against the `kademlia` package, or
against kad's own Python package (`kad.Server`, host/python) with IMPLEMENTATION `kad`.

usage: python_bench.py NODES OPS CONCURRENCY VALUE_SIZE [kademlia|kad]
Starts NODES servers on 127.0.0.1 and two client nodes that keep no replicas, runs OPS sets
through the first and OPS gets through the second with CONCURRENCY in flight, prints one JSON
object.
"""

import asyncio
import json
import logging
import os
import sys
import time


async def start_kademlia(nodes):
    """NODES `kademlia` servers and two clients; returns them, the seed and a datagram count."""
    from kademlia.network import Server
    from kademlia.protocol import KademliaProtocol
    from kademlia.storage import IStorage

    logging.getLogger("kademlia").setLevel(logging.CRITICAL)
    logging.getLogger("rpcudp").setLevel(logging.CRITICAL)
    received = [0]
    datagram_received = KademliaProtocol.datagram_received

    def count(self, data, addr):
        # Every datagram sent on loopback is received once: count at the receiver.
        received[0] += 1
        return datagram_received(self, data, addr)

    KademliaProtocol.datagram_received = count

    class NoStorage(IStorage):
        """What the clients use: they answer STOREs but keep nothing, so a get is a real lookup."""

        def __setitem__(self, key, value):
            pass

        def get(self, key, default=None):
            return default

        def __getitem__(self, key):
            raise KeyError(key)

        def iter_older_than(self, seconds_old):
            return iter(())

        def __iter__(self):
            return iter(())

    servers = []
    for i in range(nodes + 2):
        s = Server(storage=NoStorage()) if i >= nodes else Server()
        await s.listen(0, interface="127.0.0.1")
        servers.append(s)
    return servers, servers[0].transport.get_extra_info("sockname")[:2], lambda: received[0]


async def start_kad(nodes):
    """The same with `kad.Server`: the clients run in client mode and hold no replicas."""
    import kad

    servers = []
    for i in range(nodes + 2):
        s = kad.Server(client_mode=i >= nodes)
        await s.listen(0, interface="127.0.0.1")
        servers.append(s)
    return servers, servers[0].address, lambda: sum(s.stats()["datagrams_out"] for s in servers)


def phase(latencies, ok, total, datagrams):
    n = max(len(latencies), 1)
    lat = sorted(latencies)

    def pct(p):
        return lat[min(int(n * p), n - 1)] * 1e3 if lat else 0.0

    return {
        "ops_per_sec": len(lat) / max(total, 1e-9),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "success": ok / n,
        "datagrams_per_op": datagrams / n,
    }


async def drive(ops, concurrency, op):
    next_op = 0
    results = []

    async def worker():
        nonlocal next_op
        while next_op < ops:
            i = next_op
            next_op += 1
            t = time.perf_counter()
            ok = await op(i)
            results.append((time.perf_counter() - t, ok))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(concurrency, 1))))
    total = time.perf_counter() - start
    return [r[0] for r in results], sum(1 for r in results if r[1]), total


async def main(nodes, ops, concurrency, value_size, implementation):
    start = start_kad if implementation == "kad" else start_kademlia
    servers, seed, datagrams = await start(nodes)
    for s in servers[1:]:
        await s.bootstrap([seed])
    setter, getter = servers[-2], servers[-1]
    tag = os.urandom(4).hex()
    values = [os.urandom(value_size) for _ in range(ops)]

    async def put(i):
        try:
            return bool(await setter.set(f"bench-{tag}-{i}", values[i]))
        except Exception:
            return False

    async def get(i):
        try:
            return await getter.get(f"bench-{tag}-{i}") == values[i]
        except Exception:
            return False

    before = datagrams()
    lat, ok, total = await drive(ops, concurrency, put)
    mid = datagrams()
    set_phase = phase(lat, ok, total, mid - before)
    lat, ok, total = await drive(ops, concurrency, get)
    get_phase = phase(lat, ok, total, datagrams() - mid)
    for s in servers:
        s.stop()
    print(json.dumps({
        "implementation": "kad.Server" if implementation == "kad" else "python-kademlia",
        "nodes": nodes,
        "ops": ops,
        "concurrency": concurrency,
        "set": set_phase,
        "get": get_phase,
    }))


if __name__ == "__main__":
    n, m, c, v = (int(a) for a in sys.argv[1:5])
    asyncio.run(main(n, m, c, v, sys.argv[5] if len(sys.argv) > 5 else "kademlia"))
