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
writeFileSync(join(dist, 'index.d.mts'), [
  "import plugin from './index.js'",
  'export default plugin',
  "export * from './index.js'",
  ''
].join('\n'))
chmodSync(join(dist, 'lib', 'cli', 'main.js'), 0o755)
