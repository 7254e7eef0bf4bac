'use strict'
// The package is compiled to CommonJS; this writes the ESM entry that re-exports
// it, so `import` and `require` share one copy of every class (no dual-package hazard).
const { writeFileSync, chmodSync } = require('node:fs')
const { join } = require('node:path')

const dist = join(__dirname, '..', 'dist')
const names = ['fastifyHttpPools', 'parseConfig', 'ConfigError']
writeFileSync(join(dist, 'index.mjs'), [
  "import cjs from './index.js'",
  'export default cjs.default',
  `export const { ${names.join(', ')} } = cjs`,
  ''
].join('\n'))
// Its types re-export the CommonJS declarations by name only: for an ESM
// importer under node16/nodenext a default import of CommonJS types is the
// whole module object, not the plugin (while under `bundler` it is the
// plugin), and `fastifyHttpPools` is the plugin under every resolution.
writeFileSync(join(dist, 'index.d.mts'), [
  "import { fastifyHttpPools } from './index.js'",
  'export default fastifyHttpPools',
  "export * from './index.js'",
  ''
].join('\n'))
chmodSync(join(dist, 'lib', 'cli', 'main.js'), 0o755)
