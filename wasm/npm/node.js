// kad-wasm for Node >= 20: reads the .wasm from disk (fetch cannot load file: URLs), then
// exports DhtNode. Node 20 has no global WebSocket: run it with --experimental-websocket, or
// pass a constructor: DhtNode.connect(url, { WebSocket }) with WebSocket from the ws package.
import { readFile } from "node:fs/promises";
import init from "./kad_wasm.js";

export * from "./kad_wasm.js";

await init({ module_or_path: await readFile(new URL("./kad_wasm_bg.wasm", import.meta.url)) });
