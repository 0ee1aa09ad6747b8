"""kad.Server and `kad` processes are one network: each reads what the other stored."""

import base64
import json

import kad
from conftest import bounded, kad_cli


@bounded(120)
async def test_python_and_kad_node_processes_read_each_others_values(kad_processes, new_server):
    first = kad_processes()
    for _ in range(2):
        kad_processes("node", "--bootstrap", first.seed, ready="joined the network")
    s = new_server()
    await s.listen(0)
    peers = await s.bootstrap([first.addr])
    assert len(peers) == 3

    # Python set -> `kad get`.
    assert await s.set("from-python", "set by kad.Server") is True
    code, out, err = kad_cli("get", "--bootstrap", first.seed, "from-python")
    assert (code, out.strip()) == (0, "set by kad.Server"), err
    assert await s.set_acks("python-bytes", b"\x00\xff\x10") >= 1
    code, out, _ = kad_cli("get", "--bootstrap", first.seed, "--json", "python-bytes")
    v = json.loads(out)
    assert (v["kind"], v["encoding"], base64.b64decode(v["data"])) == ("bytes", "base64", b"\x00\xff\x10")

    # `kad put` -> Python get.
    code, out, err = kad_cli("put", "--bootstrap", first.seed, "from-kad", "put by the kad command")
    assert code == 0, err
    assert await s.get("from-kad") == "put by the kad command"
    assert kad_cli("put", "--bootstrap", first.seed, "--hex", "kad-bytes", "00ff")[0] == 0
    assert await s.get("kad-bytes") == b"\x00\xff"

    # Signed records written by Python, read by `kad get --pub-key`.
    secret, public = kad.keygen()
    assert await s.put_signed(secret, "profile", "signed in python", seq=3) >= 1
    code, out, _ = kad_cli("get", "--bootstrap", first.seed, "--pub-key", public.hex(), "--json", "profile")
    v = json.loads(out)
    assert (v["data"], v["seq"]) == ("signed in python", 3)

    # A `kad provide` process is found by get_providers, and the node ids agree.
    provider = kad_processes("provide", "--bootstrap", first.seed, "dataset", ready="providing ")
    found = await s.get_providers("dataset")
    assert [(p.id.hex(), p.port) for p in found] == [(provider.id, provider.addr[1])]
    nearest = await s.find_node(bytes.fromhex(first.id))
    assert nearest[0].id.hex() == first.id
