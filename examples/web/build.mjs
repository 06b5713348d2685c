// Builds the demo into dist/: index.html, and under dist/assets/ the app bundle (esbuild),
// its CSS and the SDK's .wasm. Needs bindings/wasm/pkg (scripts/build-wasm.sh builds it;
// scripts/build-web.sh runs both, and type-checks with tsc).
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, "../../bindings/wasm/pkg");
const dist = join(here, "dist");

if (!existsSync(join(pkg, "chatico_wasm.js"))) {
  console.error("error: bindings/wasm/pkg is missing; run scripts/build-wasm.sh first");
  process.exit(1);
}
const assets = join(dist, "assets");
rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

await build({
  entryPoints: [join(here, "src/main.tsx")],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  jsx: "automatic",
  jsxImportSource: "preact",
  alias: { "chatico-wasm": join(pkg, "chatico_wasm.js") },
  outfile: join(assets, "app.js"),
  logLevel: "warning",
});
copyFileSync(join(pkg, "chatico_wasm_bg.wasm"), join(assets, "chatico_wasm_bg.wasm"));
writeFileSync(join(dist, "index.html"), readFileSync(join(here, "src/index.html")));
console.log(`built ${dist}`);
