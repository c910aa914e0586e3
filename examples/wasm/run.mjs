// Runs a WebAssembly (WASI preview 1) program under Node's own WASI, with its arguments, and exits with
// its status: how the C library's harness, built for wasm32-wasi with clang and wasi-libc, proves the
// library in a JavaScript host. Usage: node run.mjs PROGRAM.wasm [ARGUMENTS...]
import { readFile } from "node:fs/promises";
import { argv, exit } from "node:process";
import { WASI } from "node:wasi";

const [program, ...rest] = argv.slice(2);
if (!program) {
  console.error("usage: node run.mjs PROGRAM.wasm [ARGUMENTS...]");
  exit(2);
}
const wasi = new WASI({ version: "preview1", args: [program, ...rest], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(program));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
