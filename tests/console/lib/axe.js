// Accessibility audit of the current page with axe-core (WCAG 2.1 A and AA rules). The engine is
// evaluated through the DevTools protocol, which the page's Content-Security-Policy does not
// govern, so the page is audited as served.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * The WCAG A/AA violations on the page, as readable lines (empty when there are none).
 * @param {import('playwright-core').Page} page
 */
export async function accessibilityViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    await page.evaluate(AXE_SOURCE);
  }
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => ({
      id: v.id,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
    }));
  });
  return violations.map((v) => `${v.id} (${v.help})\n    ${v.targets.join('\n    ')}`);
}
