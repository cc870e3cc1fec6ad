// Times as people read them: "2 min ago", "in 12 s", with the exact time kept for hover.

const UNITS = [
  ['d', 86400],
  ['h', 3600],
  ['min', 60],
  ['s', 1],
];

/**
 * How far `at` is from `now`, in its largest unit: "just now", "12 s ago", "3 min ago",
 * "in 2 h". Null for a time that does not parse.
 * @param {string | number | Date} at
 * @param {number} [now] milliseconds since the epoch
 */
export function relative(at, now = Date.now()) {
  const ms = new Date(at).getTime();
  if (Number.isNaN(ms)) return null;
  const seconds = Math.round((ms - now) / 1000);
  const size = Math.abs(seconds);
  if (size < 5) return 'just now';
  const [unit, span] = UNITS.find(([, s]) => size >= s) || UNITS[UNITS.length - 1];
  const amount = Math.floor(size / span);
  return seconds < 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
}

const pad = (n) => String(n).padStart(2, '0');

/** The local date and time of `at`: "2025-01-31 08:00:00". */
export function absolute(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return String(at);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
