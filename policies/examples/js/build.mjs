// Builds policy.js as a component with componentize-js, through its API: the `jco
// componentize` command fails here ("failed to get path metadata"). Every WASI feature is
// disabled, so the component imports no WASI at all, as the host requires.
//   node build.mjs OUT.wasm WIT_DIR NODE_MODULES
import { writeFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [out, wit, modules] = process.argv.slice(2);
const entry = join(modules, '@bytecodealliance/componentize-js/src/componentize.js');
const { componentize } = await import(pathToFileURL(entry).href);
const { component } = await componentize({
  sourcePath: join(dirname(fileURLToPath(import.meta.url)), 'policy.js'),
  witPath: wit,
  worldName: 'placement',
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await writeFile(`${out}.tmp`, component);
await rename(`${out}.tmp`, out);
