// Every tsx/ts code block of the README is copied from a file in examples/ (which tsc checks), so
// the README's examples compile as written.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const examples = readdirSync(join(root, 'examples')).map((name) => ({
  name,
  text: readFileSync(join(root, 'examples', name), 'utf8'),
}));
const blocks = [...readme.matchAll(/```(?:tsx|ts|typescript)\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

describe('README', () => {
  it('has code examples', () => {
    expect(blocks.length).toBeGreaterThan(5);
  });

  it.each(blocks.map((block, index) => [index + 1, block] as const))('example %i is in examples/', (_, block) => {
    expect(examples.some((file) => file.text.includes(block.trim()))).toBe(true);
  });
});
