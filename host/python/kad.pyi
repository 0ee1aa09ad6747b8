"""kad, a Kademlia DHT, for Python: `kad.Server` has the shape of `kademlia.network.Server`."""

import os
from typing import List, Optional, Tuple, Union

__version__: str
K: int
"""Contacts per bucket, replication factor and lookup width (20, fixed at compile time)."""
MAX_VALUE: int
"""Largest value in bytes (1000)."""

Key = Union[str, bytes]
Value = Union[str, bytes]

class KadError(Exception):
    """An error of a kad node."""

class NetworkError(KadError):
    """The network could not serve the request: no known peers, no answer, no peer stored it."""

class Peer:
    """A node of the network: its id and UDP address."""

    @property
    def id(self) -> bytes: ...
    @property
    def ip(self) -> str: ...
    @property
    def port(self) -> int: ...

class SignedValue:
    """A signed (SECURED) record as found."""

    @property
    def value(self) -> Value: ...
    @property
    def seq(self) -> int: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...

def keygen() -> Tuple[bytes, bytes]:
    """A new ed25519 key pair for signed records: `(secret_key, public_key)`, 32 bytes each."""

class Server:
    """A kad node with the shape of `kademlia.network.Server`."""

    def __init__(
        self,
        ksize: int = 20,
        alpha: int = 3,
        node_id: Optional[bytes] = None,
        storage: Union[None, str, "os.PathLike[str]"] = None,
        client_mode: bool = False,
    ) -> None: ...
    @property
    def ksize(self) -> int: ...
    @property
    def alpha(self) -> int: ...
    @property
    def id(self) -> bytes:
        """The node id (20 bytes); raises KadError when not listening."""
    @property
    def address(self) -> Tuple[str, int]:
        """The bound UDP address; raises KadError when not listening."""
    async def listen(self, port: int, interface: str = "127.0.0.1") -> None: ...
    async def bootstrap(self, addrs: List[Tuple[str, int]]) -> List[Peer]:
        """Joins through known nodes; the peers known then. NetworkError when none answered."""
    async def set(self, key: Key, value: Value) -> bool:
        """True when at least one peer stored the value, False when none did."""
    async def set_acks(self, key: Key, value: Value) -> int:
        """How many peers stored the value; NetworkError when none did."""
    async def get(self, key: Key) -> Optional[Value]:
        """The value as it was set (str or bytes), or None."""
    async def find_node(self, target: Union[bytes, str]) -> List[Peer]:
        """The closest peers to a node id (20 bytes or 40 hex digits), nearest first."""
    async def find_value(self, key: Key) -> Tuple[Optional[Value], List[Peer]]:
        """(value, []) when a node has it, else (None, the closest peers)."""
    async def provide(self, key: Key) -> int:
        """Announces this node as a provider of key; how many nodes recorded it."""
    async def get_providers(self, key: Key) -> List[Peer]: ...
    async def put_signed(self, secret_key: bytes, key: Key, value: Value, seq: int = 0) -> int:
        """Stores a record signed with secret_key under (its public key, key); the acks."""
    async def get_signed(self, public_key: bytes, key: Key) -> Optional[SignedValue]: ...
    def bootstrappable_neighbors(self) -> List[Tuple[str, int]]: ...
    def save_state(self, path: Union[str, "os.PathLike[str]"]) -> None: ...
    @staticmethod
    async def load_state(
        path: Union[str, "os.PathLike[str]"], port: int = 0, interface: str = "127.0.0.1"
    ) -> "Server": ...
    def stats(self) -> dict:
        """Counters: contacts, records, published, providers, datagrams_in/out, lookups, ..."""
    def stop(self) -> None:
        """Stops the node and joins its thread; pending calls raise KadError."""
