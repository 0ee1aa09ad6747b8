"""kad.Server against kademlia.network.Server: the same set/get workload from Python.

usage: python bench.py [--nodes 10,50] [--ops 500] [--concurrency 1,16] [--value-size 64]
(scripts/bench-python installs both packages into a virtualenv and runs this.)

For each setting, runs host/bench/python_bench.py (the workload `kad bench --compare-python`
runs against the Python library: N servers on 127.0.0.1, M sets through one client node and M
gets through another, both keeping no replicas) once with each implementation, each in a fresh
process, and prints ops/s, p50/p99 latency and the ratios.
"""

import argparse
import json
import pathlib
import subprocess
import sys

WORKLOAD = pathlib.Path(__file__).resolve().parents[1] / "bench" / "python_bench.py"
IMPLEMENTATIONS = ("kad", "kademlia")


def run(implementation, nodes, ops, concurrency, value_size):
    args = [sys.executable, str(WORKLOAD), str(nodes), str(ops), str(concurrency), str(value_size), implementation]
    out = subprocess.run(args, capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout)


def main():
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=ints, default=[10, 50])
    p.add_argument("--ops", type=ints, default=[500])
    p.add_argument("--concurrency", type=ints, default=[1, 16])
    p.add_argument("--value-size", type=int, default=64)
    a = p.parse_args()
    head = "{:<16} {:>5} {:>5} {:>4} | {:>9} {:>8} {:>8} {:>5} | {:>9} {:>8} {:>8} {:>5} | {:>6}"
    print(head.format("implementation", "nodes", "ops", "conc", "set ops/s", "p50 ms", "p99 ms", "ok%",
                      "get ops/s", "p50 ms", "p99 ms", "ok%", "dg/set"))
    row = "{:<16} {:>5} {:>5} {:>4} | {:>9.0f} {:>8.2f} {:>8.2f} {:>5.1f} | {:>9.0f} {:>8.2f} {:>8.2f} {:>5.1f} | {:>6.1f}"
    for nodes in a.nodes:
        for ops in a.ops:
            for conc in a.concurrency:
                r = {i: run(i, nodes, ops, conc, a.value_size) for i in IMPLEMENTATIONS}
                for i in IMPLEMENTATIONS:
                    s, g = r[i]["set"], r[i]["get"]
                    print(row.format(r[i]["implementation"], nodes, ops, conc, s["ops_per_sec"], s["p50_ms"],
                                     s["p99_ms"], 100 * s["success"], g["ops_per_sec"], g["p50_ms"], g["p99_ms"],
                                     100 * g["success"], s["datagrams_per_op"]))
                k, py = r["kad"], r["kademlia"]
                ratio = lambda a, b: a / max(b, 1e-9)  # noqa: E731
                print("{:<16} {:>5} {:>5} {:>4} | set {:.1f}x ops/s, p50 {:.1f}x lower | get {:.1f}x ops/s, p50 {:.1f}x lower".format(
                    "ratio", nodes, ops, conc,
                    ratio(k["set"]["ops_per_sec"], py["set"]["ops_per_sec"]), ratio(py["set"]["p50_ms"], k["set"]["p50_ms"]),
                    ratio(k["get"]["ops_per_sec"], py["get"]["ops_per_sec"]), ratio(py["get"]["p50_ms"], k["get"]["p50_ms"])))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
