// The built package as its consumers load it: CommonJS `require` and ES `import`, each entry point,
// through the package's own `exports` map (Node resolves a package's own name from inside it).
// `npm test` builds dist/ first; `npm run check:package` checks the types of every entry point
// under each TypeScript resolution mode, and scripts/check-install.sh installs the packed tarball
// into fresh Vite and Next.js projects.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, inject, it } from 'vitest';

import { freshId, tokenFor } from './helpers';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

async function node(args: string[]): Promise<unknown> {
  const token = await tokenFor(freshId());
  const { stdout } = await run(process.execPath, args, {
    cwd: root,
    env: { ...process.env, SERVER_URL: inject('serverUrl'), TOKEN: token },
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? 'null');
}

// Talks to the real server with the loaded module, and reports what it found.
const program = (load: string) => `
${load}
async function main() {
  client.configure({ baseUrl: process.env.SERVER_URL, getToken: () => process.env.TOKEN });
  const { workflows } = await client.getWorkflowTypes();
  console.log(JSON.stringify({
    types: workflows.length,
    hooks: typeof client.useWorkflow + ',' + typeof client.useTaskRunner,
    coreHasHooks: 'useWorkflow' in core,
    instance: typeof new client.NosyntaskClient().startWorkflow,
    apiError: new client.ApiError('x', 404, 'not_found') instanceof core.ApiError,
  }));
}
main().catch((e) => { console.error(e); process.exit(1); });
`;

describe('the built package', () => {
  it('is built', () => {
    for (const file of ['dist/cjs/index.js', 'dist/cjs/core.d.ts', 'dist/esm/index.js', 'dist/esm/index.d.ts.map']) {
      expect(existsSync(join(root, file)), `${file} (run npm run build)`).toBe(true);
    }
  });

  it('loads with CommonJS require', async () => {
    const found = await node([
      '-e',
      program(`const client = require('@nosyntask/client'); const core = require('@nosyntask/client/core');
if (!require.resolve('@nosyntask/client').includes('/dist/cjs/')) throw new Error('not the CommonJS build');`),
    ]);
    expect(found).toMatchObject({ hooks: 'function,function', coreHasHooks: false, instance: 'function', apiError: true });
    expect((found as { types: number }).types).toBeGreaterThan(10);
  });

  it('loads with ES import', async () => {
    const found = await node([
      '--input-type=module',
      '-e',
      program(`const client = await import('@nosyntask/client'); const core = await import('@nosyntask/client/core');
if (!import.meta.resolve('@nosyntask/client').includes('/dist/esm/')) throw new Error('not the ES build');`),
    ]);
    expect(found).toMatchObject({ hooks: 'function,function', coreHasHooks: false, instance: 'function', apiError: true });
  });

  it("marks the React modules 'use client' in both builds", async () => {
    const { readFile } = await import('node:fs/promises');
    for (const build of ['esm', 'cjs']) {
      for (const file of ['hooks/useWorkflow.js', 'hooks/useTaskRunner.js', 'hooks/context.js']) {
        const text = await readFile(join(root, 'dist', build, file), 'utf8');
        expect(text.split('\n').slice(0, 2).join('\n'), `${build}/${file}`).toMatch(/^("use strict";\n)?'use client';/);
      }
      const core = await readFile(join(root, 'dist', build, 'core.js'), 'utf8');
      expect(core).not.toContain('use client');
    }
  });
});
