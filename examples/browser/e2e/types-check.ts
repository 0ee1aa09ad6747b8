// Compiled (not run) by `npm test` with tsc --strict: the package's TypeScript types describe the
// API as the README shows it. A wrong type here fails the test.
import { DhtNode, type DhtEvent, type PeerInfo, type SignedRecord, type Value } from "kad-wasm";

export async function usage(url: string): Promise<void> {
  const events: DhtEvent[] = [];
  const node: DhtNode = await DhtNode.connect(url, { onEvent: (e) => events.push(e), timeoutMs: 5000 });
  const plain: DhtNode = await DhtNode.connect(url);
  const acks: number = await node.put("greeting", "hello");
  const bytesAcks: number = await node.put(new Uint8Array([1]), new Uint8Array([2]));
  const value: Value | null = await node.get("greeting");
  if (typeof value === "string") value.toUpperCase();
  else if (value !== null) value.byteLength;
  const peers: PeerInfo[] = node.peers();
  const closest: PeerInfo[] = await node.findNode(node.id);
  const provided: number = await node.provide("dataset");
  const providers: PeerInfo[] = await node.getProviders("dataset");
  const secret: Uint8Array = DhtNode.generateSecretKey();
  const signedAcks: number = await node.putSigned(secret, "profile", 1, "v1");
  const signedAcksBig: number = await node.putSigned(secret, "profile", 2n, new Uint8Array([1]));
  const record: SignedRecord | null = await node.getSigned(DhtNode.publicKey(secret), "profile");
  const contacts: number = await node.bootstrap();
  const again: number = await node.bootstrap(["127.0.0.1:8468"]);
  const addr: string | undefined = node.address;
  const client: boolean = node.clientMode;
  node.onEvent = (e: DhtEvent) => {
    if (e.type === "query-done") console.log(e.query, e.ok, e.ms);
    else if (e.type === "closed") console.log(e.code, e.reason);
    else console.log(e.id, e.addr);
  };
  node.onEvent = null;
  node.close();
  plain.close();
  console.log(acks, bytesAcks, peers, closest, provided, providers, signedAcks, signedAcksBig, record);
  console.log(contacts, again, addr, client, events);
}
