// What a task's or a job's model calls used and cost, as one line of text. Pure functions (no
// DOM), so they are unit-tested in Node.

const number = (n) => Number(n).toLocaleString('en-US');

/**
 * `1,200 prompt + 800 completion tokens · 3 images · 5 s of video · cost 0.0088`; `null` when
 * nothing was reported. The cost is in the currency of the models' configured prices.
 * @param {any} usage
 */
export function usageText(usage) {
  if (!usage || typeof usage !== 'object') return null;
  const parts = [];
  const prompt = usage.prompt_tokens;
  const completion = usage.completion_tokens;
  if (prompt !== undefined || completion !== undefined) {
    parts.push(`${number(prompt ?? 0)} prompt + ${number(completion ?? 0)} completion tokens`);
  }
  if (usage.images !== undefined) parts.push(`${number(usage.images)} image${usage.images === 1 ? '' : 's'}`);
  if (usage.video_seconds !== undefined) parts.push(`${number(usage.video_seconds)} s of video`);
  if (usage.cost_micros !== undefined) parts.push(`cost ${costText(usage.cost_micros)}`);
  return parts.length ? parts.join(' · ') : null;
}

/**
 * A cost in millionths as a decimal without trailing zeros: 8800 → `0.0088`.
 * @param {number} micros
 */
export function costText(micros) {
  const whole = Math.floor(micros / 1e6);
  const fraction = String(micros % 1e6).padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : String(whole);
}

/**
 * Each model's part, `[[name, text], …]`, for a job or step that used several.
 * @param {any} usage
 */
export function usageByModel(usage) {
  if (!usage || typeof usage.models !== 'object' || usage.models === null) return [];
  return Object.entries(usage.models)
    .map(([model, part]) => [model, usageText(part)])
    .filter(([, text]) => text !== null);
}
