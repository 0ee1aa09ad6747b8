// kad-wasm for browsers (and bundlers): loads the .wasm next to this file, then exports DhtNode.
import init from "./kad_wasm.js";

export * from "./kad_wasm.js";

await init({ module_or_path: new URL("./kad_wasm_bg.wasm", import.meta.url) });
