"""kad.Server in one process: values, the honest set result, errors, concurrency, state, logs."""

import asyncio
import json
import logging

import pytest

import kad
from conftest import bounded, network


@bounded(30)
async def test_values_come_back_as_str_or_bytes_as_they_were_set(new_server):
    servers = await network(new_server, 4)
    writer, reader = servers[1], servers[3]
    cases = {
        "text": "my awesome value",
        "unicode": "héllo wörld ✓",
        "empty text": "",
        "bytes": b"\x00\xffbinary",
        "empty bytes": b"",
        "utf-8 bytes stay bytes": "héllo".encode(),
        b"a bytes key": "text under a bytes key",
        "largest": "x" * kad.MAX_VALUE,
    }
    for key, value in cases.items():
        assert await writer.set(key, value) is True
    for key, value in cases.items():
        got = await reader.get(key)
        assert type(got) is type(value) and got == value, key
    # A str key is its UTF-8 bytes.
    assert await reader.get("a bytes key") == "text under a bytes key"
    assert await reader.get("never set") is None


@bounded(30)
async def test_set_is_true_only_when_a_peer_stored_the_value(new_server):
    lone = new_server()
    await lone.listen(0)
    assert await lone.set("my-key", "my value") is False
    with pytest.raises(kad.NetworkError, match="no known peers: bootstrap from a running node first"):
        await lone.set_acks("my-key", "my value")
    with pytest.raises(kad.NetworkError, match="no known peers"):
        await lone.get("my-key")

    a, b = await network(new_server, 2)
    assert await b.set_acks("k", "v") == 1  # a stored it
    a.stop()
    # The only peer is gone: the store goes unanswered, and set says so.
    assert await b.set("k2", "v") is False
    with pytest.raises(kad.NetworkError, match="no peer stored the value"):
        await b.set_acks("k3", "v")


@bounded(60)
async def test_errors_are_python_exceptions_with_kads_messages(new_server):
    with pytest.raises(ValueError, match="ksize must be 20"):
        new_server(ksize=8)
    with pytest.raises(ValueError, match="alpha must be at least 1"):
        new_server(alpha=0)
    with pytest.raises(ValueError, match="node_id must be 20 bytes, not 3"):
        new_server(node_id=b"abc")
    with pytest.raises(TypeError, match="storage must be None"):
        new_server(storage=object())

    s = new_server()
    with pytest.raises(kad.KadError, match="not listening"):
        await s.get("k")
    await s.listen(0)
    with pytest.raises(kad.KadError, match="already listening"):
        await s.listen(0)
    taken = new_server()
    with pytest.raises(OSError, match=f"cannot bind UDP 127.0.0.1:{s.address[1]}"):
        await taken.listen(s.address[1])
    with pytest.raises(ValueError, match="bad address"):
        await new_server().listen(0, interface="not an address")

    other = new_server()
    await other.listen(0)
    await s.bootstrap([other.address])
    with pytest.raises(ValueError, match="value of 1001 bytes is over the limit of 1000 bytes"):
        await s.set("big", "x" * 1001)
    with pytest.raises(TypeError, match="value must be str or bytes, not int"):
        await s.set("k", 42)
    with pytest.raises(TypeError, match="key must be str or bytes, not float"):
        await s.get(1.5)
    with pytest.raises(ValueError, match="target"):
        await s.find_node("not an id")
    with pytest.raises(ValueError, match="secret_key must be 32 bytes"):
        await s.put_signed(b"short", "k", "v")
    with pytest.raises(ValueError, match="salt of 65 bytes is over the limit"):
        await s.put_signed(kad.keygen()[0], "n" * 65, "v")
    dead = new_server()
    await dead.listen(0)
    dead_port = dead.address[1]
    dead.stop()
    fresh = new_server()
    await fresh.listen(0)
    with pytest.raises(kad.NetworkError, match="no peer answered"):
        await fresh.bootstrap([("127.0.0.1", dead_port)])
    fresh.stop()
    assert issubclass(kad.NetworkError, kad.KadError)

    s.stop()
    with pytest.raises(kad.KadError, match="the node has stopped"):
        await s.set("k", "v")
    s.stop()  # again: nothing to do
    other.stop()


@bounded(60)
async def test_a_hundred_concurrent_sets_from_asyncio_tasks_are_all_acknowledged(new_server):
    servers = await network(new_server, 5)
    client = servers[-1]
    keys = [f"concurrent-{i}" for i in range(100)]
    tasks = [asyncio.create_task(client.set(k, f"value {k}")) for k in keys]
    assert await asyncio.gather(*tasks) == [True] * 100
    reader = servers[1]
    got = await asyncio.gather(*(reader.get(k) for k in keys))
    assert got == [f"value {k}" for k in keys]


@bounded(30)
async def test_lookups_providers_and_signed_records(new_server):
    servers = await network(new_server, 4)
    a, b, c, d = servers
    # find_node: the closest nodes to an id, that id's node first.
    for target in (d.id, d.id.hex()):
        found = await a.find_node(target)
        assert found[0].id == d.id and (found[0].ip, found[0].port) == d.address
    # find_value: the value, or the closest peers when nobody has it.
    await a.set("here", b"v")
    assert await b.find_value("here") == (b"v", [])
    value, closest = await b.find_value("nowhere")
    assert value is None and len(closest) == 3  # the other three nodes
    # Providers.
    assert await b.provide("dataset") >= 1
    providers = await c.get_providers("dataset")
    assert [(p.ip, p.port) for p in providers] == [b.address]
    assert await c.get_providers("nobody provides this") == []
    # Signed records: the highest sequence number wins.
    secret, public = kad.keygen()
    assert len(secret) == len(public) == 32
    assert await a.put_signed(secret, "profile", "v1", seq=1) >= 1
    assert await a.put_signed(secret, "profile", b"v2", seq=2) >= 1
    found = await d.get_signed(public, "profile")
    assert (found.value, found.seq, found.public_key) == (b"v2", 2, public)
    assert len(found.signature) == 64
    assert await d.get_signed(kad.keygen()[1], "profile") is None


@bounded(30)
async def test_id_address_stats_and_a_chosen_node_id(new_server):
    chosen = bytes(range(20))
    s = new_server(node_id=chosen, alpha=2)
    await s.listen(0, interface="127.0.0.1")
    assert (s.id, s.ksize, s.alpha) == (chosen, 20, 2)
    ip, port = s.address
    assert ip == "127.0.0.1" and port > 0
    peer = new_server()
    await peer.listen(0)
    assert [p.id for p in await peer.bootstrap([("localhost", port)])] == [chosen]
    await peer.set("k", "v")
    stats = s.stats()
    assert stats["contacts"] == 1 and stats["records"] == 1 and not stats["persistent"]
    assert stats["datagrams_in"] > 0 and stats["datagrams_out"] > 0
    assert repr(s) == f"<kad.Server {chosen.hex()} on 127.0.0.1:{port}>"


@bounded(30)
async def test_state_saved_and_loaded_and_storage_on_disk(new_server, tmp_path):
    a, b, c = await network(new_server, 3)
    assert sorted(b.bootstrappable_neighbors()) == sorted([a.address, c.address])
    path = tmp_path / "state.json"
    b.save_state(str(path))
    state = json.loads(path.read_text())
    assert state["id"] == b.id.hex() and state["ksize"] == 20 and len(state["neighbors"]) == 2
    old_id = b.id
    b.stop()
    again = await kad.Server.load_state(str(path))
    try:
        assert again.id == old_id
        assert sorted(again.bootstrappable_neighbors()) == sorted([a.address, c.address])
    finally:
        again.stop()
    with pytest.raises(kad.KadError, match="is not a saved state"):
        (tmp_path / "bad.json").write_text("{}")
        await kad.Server.load_state(str(tmp_path / "bad.json"))

    stored = new_server(storage=tmp_path / "db")
    await stored.listen(0)
    await stored.bootstrap([a.address])
    assert stored.stats()["persistent"]
    await a.set("kept", "on disk")
    node_id = stored.id
    stored.stop()
    reopened = new_server(storage=str(tmp_path / "db"))
    await reopened.listen(0)
    assert reopened.id == node_id  # the id is kept; so are the records
    assert await reopened.get("kept") == "on disk"


@bounded(30)
async def test_logs_go_to_the_python_logger_kad(new_server):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    log = logging.getLogger("kad")
    handler = Keep()
    log.addHandler(handler)
    try:
        log.setLevel(logging.DEBUG)
        a, b = await network(new_server, 2)
        for _ in range(100):
            if any(r.name == "kad.node" and r.getMessage().startswith("peer added") for r in records):
                break
            await asyncio.sleep(0.02)
        assert any(r.levelno == logging.DEBUG and r.name == "kad.node" for r in records)

        log.setLevel(logging.WARNING)
        records.clear()
        lone = new_server()
        await lone.listen(0)
        assert await lone.set("k", "v") is False
        await a.bootstrap([b.address])
        assert [r.levelno for r in records] == [logging.WARNING]
        assert records[0].name == "kad" and "no known peers" in records[0].getMessage()
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
