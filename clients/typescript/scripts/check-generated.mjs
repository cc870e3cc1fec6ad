// Fails when src/generated/api.ts is not what `npm run generate` makes from ../../openapi.yaml, or
// src/generated/workflows.ts not what it makes from schema/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const spec = join(root, '..', '..', 'openapi.yaml');
const committed = join(root, 'src', 'generated', 'api.ts');

if (!existsSync(spec)) {
  console.error(`check:generated: ${spec} does not exist`);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'nosyntask-openapi-'));
try {
  const fresh = join(dir, 'api.ts');
  const cli = join(root, 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
  execFileSync(process.execPath, [cli, spec, '--output', fresh], { stdio: ['ignore', 'ignore', 'inherit'] });
  const want = readFileSync(fresh, 'utf8');
  const have = existsSync(committed) ? readFileSync(committed, 'utf8') : '';
  if (want === have) {
    console.log('check:generated: src/generated/api.ts matches openapi.yaml');
  } else {
    const wantLines = want.split('\n');
    const haveLines = have.split('\n');
    let line = 0;
    while (line < wantLines.length && wantLines[line] === haveLines[line]) line += 1;
    console.error('check:generated: src/generated/api.ts is stale; run `npm run generate` and commit it.');
    console.error(`first difference at line ${line + 1}:`);
    console.error(`  committed: ${haveLines[line] ?? '<end of file>'}`);
    console.error(`  generated: ${wantLines[line] ?? '<end of file>'}`);
    process.exitCode = 1;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// The per-workflow types (scripts/generate-workflow-types.mjs).
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'generate-workflow-types.mjs'), '--check'], { stdio: 'inherit' });
} catch {
  process.exitCode = 1;
}
