// Finds the images and videos in a step's result, to show them inline. Pure functions (no DOM),
// so they are unit-tested in Node.

const IMAGE = /\.(png|jpe?g|gif|webp|avif|bmp|svg)$/i;
const VIDEO = /\.(mp4|webm|mov|m4v|ogv)$/i;

/**
 * A URL the page may load: same-origin paths (`/files/…`) or http(s) URLs; never `javascript:`,
 * `data:` or protocol-relative ones.
 * @param {unknown} value
 */
export function safeUrl(value) {
  if (typeof value !== 'string' || value.length > 4096) return null;
  if (value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/\\')) return value;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * What a URL shows, by its extension (the path, without query or fragment), else by the name of
 * the field that holds it.
 * @param {string} url
 * @param {string} key
 * @returns {'image' | 'video' | null}
 */
export function mediaKind(url, key) {
  const path = url.split(/[?#]/)[0];
  if (IMAGE.test(path)) return 'image';
  if (VIDEO.test(path)) return 'video';
  if (/video/i.test(key)) return 'video';
  if (/(image|frame|view|poster|thumbnail)/i.test(key)) return 'image';
  return null;
}

/** `frontViewUrl` → `front view`, `startFrame` → `start frame`. */
export function humanize(key) {
  return key
    .replace(/(Url|URL|_url)$/, '')
    .replace(/_/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .trim();
}

/**
 * The media in a JSON value, in document order, one entry per distinct URL (with every field
 * that held it).
 * @param {unknown} value
 * @returns {{url: string, kind: 'image' | 'video', keys: string[]}[]}
 */
export function findMedia(value) {
  /** @type {Map<string, {url: string, kind: 'image' | 'video', keys: string[]}>} */
  const found = new Map();
  const visit = (node, key, depth) => {
    if (depth > 8 || node === null || node === undefined) return;
    if (typeof node === 'string') {
      const url = safeUrl(node);
      if (!url) return;
      const isMediaField = /(url|frame|image|video)$/i.test(key);
      const kind = mediaKind(url, key);
      if (!kind || (!isMediaField && !IMAGE.test(url) && !VIDEO.test(url))) return;
      const entry = found.get(url);
      if (entry) {
        if (!entry.keys.includes(key)) entry.keys.push(key);
      } else {
        found.set(url, { url, kind, keys: [key] });
      }
      return;
    }
    if (Array.isArray(node)) {
      node.forEach((item, i) => visit(item, `${key}[${i}]`.replace(/^\[/, 'item ['), depth + 1));
      return;
    }
    if (typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) visit(v, k, depth + 1);
    }
  };
  visit(value, '', 0);
  // Views and frames in their natural order (front, side, back; start, end), else as found.
  const rank = (entry) => {
    const key = entry.keys.join(' ');
    if (/front|start/i.test(key)) return 0;
    if (/back|end/i.test(key)) return 2;
    return 1;
  };
  return [...found.values()].sort((a, b) => rank(a) - rank(b));
}
