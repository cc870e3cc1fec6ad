// From a workflow's `paramsSchema` (a JSON Schema object) to form fields and back. Pure functions
// (no DOM), so they are unit-tested in Node; start.js draws the fields.

/**
 * @typedef {{
 *   name: string, type: string, description: string, required: boolean, oneOf: boolean,
 *   default: unknown, enum: string[] | null, minimum: number | null, maximum: number | null,
 *   maxLength: number | null, control: 'input' | 'textarea' | 'select' | 'checkbox' | 'json',
 *   modelKind: string | null
 * }} Field
 */

/**
 * The fields of a schema: required ones first, then the "at least one of" groups, then the rest;
 * numbers and the model name last.
 * @param {any} schema
 * @returns {{fields: Field[], anyOf: string[][]}}
 */
export function fieldsOf(schema) {
  const properties = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const anyOf = ((schema && schema.anyOf) || [])
    .map((alt) => (alt && alt.required) || [])
    .filter((names) => names.length > 0);
  const grouped = new Set(anyOf.flat());
  const fields = Object.entries(properties).map(([name, spec]) => fieldOf(name, spec || {}, required.has(name), grouped.has(name)));
  const rank = (f) => [
    f.required ? 0 : f.oneOf ? 1 : 2,
    MODEL_FIELDS.has(f.name) ? 2 : f.type === 'integer' || f.type === 'number' || f.type === 'boolean' ? 1 : 0,
  ];
  fields.sort((a, b) => {
    const [a1, a2] = rank(a);
    const [b1, b2] = rank(b);
    return a1 - b1 || a2 - b2;
  });
  return { fields, anyOf: anyOf.length > 1 ? [anyOf.flat()] : [] };
}

/** The params that name a configured model: the typed fields and their alias. */
const MODEL_FIELDS = new Set(['modelName', 'textModel', 'imageModel', 'videoModel']);

function fieldOf(name, spec, required, oneOf) {
  const type = Array.isArray(spec.type) ? spec.type.find((t) => t !== 'null') || 'string' : spec.type || 'string';
  const values = Array.isArray(spec.enum) ? spec.enum.map(String) : null;
  let control = 'input';
  if (values) control = 'select';
  else if (type === 'boolean') control = spec.default === undefined ? 'select' : 'checkbox';
  else if (type === 'array' || type === 'object') control = 'json';
  else if (type === 'string' && (spec.maxLength === undefined || spec.maxLength > 500)) control = 'textarea';
  const kind = /\b(text|image|video) model\b/.exec(spec.description || '');
  return {
    name,
    type,
    description: spec.description || '',
    required,
    oneOf,
    default: spec.default,
    enum: values,
    minimum: typeof spec.minimum === 'number' ? spec.minimum : null,
    maximum: typeof spec.maximum === 'number' ? spec.maximum : null,
    maxLength: typeof spec.maxLength === 'number' ? spec.maxLength : null,
    control,
    modelKind: MODEL_FIELDS.has(name) && kind ? kind[1] : null,
  };
}

/** The text a field's control starts with. */
export function initialText(field) {
  if (field.default === undefined || field.default === null) return '';
  if (field.control === 'json') return JSON.stringify(field.default, null, 2);
  return String(field.default);
}

/**
 * Turns one control's text into a param value. `undefined` leaves the param out (an empty
 * optional field); an `error` names what is wrong. Range and requiredness are left to the server,
 * which answers 422 naming the field: one set of rules.
 * @param {Field} field
 * @param {string | boolean} raw the control's value (a boolean for checkboxes)
 * @returns {{value?: unknown, error?: string}}
 */
export function parseValue(field, raw) {
  if (field.control === 'checkbox') return { value: Boolean(raw) };
  const text = String(raw);
  if (text.trim() === '') return {};
  switch (field.control === 'select' && !field.enum ? 'boolean' : field.type) {
    case 'integer':
    case 'number': {
      const n = Number(text.trim());
      if (!Number.isFinite(n)) return { error: `${field.name}: must be a number` };
      return { value: n };
    }
    case 'boolean':
      if (text === 'true') return { value: true };
      if (text === 'false') return { value: false };
      return { error: `${field.name}: must be true or false` };
    case 'array':
    case 'object': {
      try {
        return { value: JSON.parse(text) };
      } catch (err) {
        return { error: `${field.name}: not valid JSON (${err.message})` };
      }
    }
    default:
      return { value: text };
  }
}

/**
 * The fields a 422 message names: `invalid params: duration: must be …` → `duration`;
 * `scriptContent or scenes: …` → both.
 * @param {string} message
 * @param {string[]} names the form's field names
 */
export function fieldsNamed(message, names) {
  const body = message.replace(/^invalid params:\s*/, '');
  const head = body.split(':')[0] || '';
  const named = head.split(/\s+or\s+|,\s*/).map((s) => s.trim().replace(/[[.].*$/, ''));
  return names.filter((n) => named.includes(n));
}
