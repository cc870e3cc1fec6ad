// The console's shell: the session (a token in localStorage), the hash router, the navigation.
// Views are functions `render(container, ctx, params)` that return a cleanup function.

import { Api, tokenClaims } from './api.js';
import { h, message, replace } from './dom.js';
import { renderAdmin } from './admin.js';
import { renderJob } from './job.js';
import { renderJobs } from './jobs.js';
import { renderSignIn } from './signin.js';
import { renderStart } from './start.js';

const TOKEN_KEY = 'nosyntask.console.token';
const NEXT_KEY = 'nosyntask.console.next';
/** How long a success notice stays. */
const FLASH_MS = 6000;

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
/** @type {null | (() => void)} */
let cleanup = null;
/** @type {null | {token: string, claims: {userId: number | null, role: string, exp: number | null}, api: Api, types: Promise<any> | null}} */
let session = null;
/** @type {null | {kind: string, text: string}} */
let flash = null;
let firstRender = true;

function makeSession(token) {
  const claims = tokenClaims(token);
  if (!claims) return null;
  const api = new Api(token, () => {
    signOut({ kind: 'error', text: 'The server refused your token (expired, or signed with another secret). Sign in again.' });
  });
  return { token, claims, api, types: null };
}

function loadSession() {
  let token = null;
  try {
    token = localStorage.getItem(TOKEN_KEY);
  } catch {
    token = null;
  }
  if (!token) return null;
  const restored = makeSession(token);
  if (!restored || (restored.claims.exp && restored.claims.exp * 1000 <= Date.now())) {
    localStorage.removeItem(TOKEN_KEY);
    flash = { kind: 'info', text: 'Your saved token has expired. Sign in again.' };
    return null;
  }
  return restored;
}

/** Saves a token that the server accepted, and goes where the user was headed. */
function signIn(token) {
  session = makeSession(token);
  if (!session) return;
  localStorage.setItem(TOKEN_KEY, token);
  updateChrome();
  const next = sessionStorage.getItem(NEXT_KEY);
  sessionStorage.removeItem(NEXT_KEY);
  navigate(next && !next.startsWith('#/signin') ? next : '#/jobs');
}

function signOut(notice) {
  localStorage.removeItem(TOKEN_KEY);
  session = null;
  flash = notice;
  updateChrome();
  if (location.hash.startsWith('#/signin')) route();
  else navigate('#/signin');
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function updateChrome() {
  const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
  const box = /** @type {HTMLElement} */ (document.getElementById('session'));
  const who = /** @type {HTMLElement} */ (document.getElementById('whoami'));
  nav.hidden = !session;
  box.hidden = !session;
  const admin = nav.querySelector('[data-route="admin"]');
  if (admin) admin.closest('li').hidden = !(session && session.claims.role === 'admin');
  if (session) {
    const { userId, role, exp } = session.claims;
    const until = exp ? new Date(exp * 1000).toLocaleString() : 'no expiry';
    replace(who, 'User ', h('strong', { text: userId ?? '?' }), ` · ${role}`);
    who.title = `Token valid until ${until}`;
  }
}

/**
 * The notice a view opens with ("Started job 12."): dismissable, and a success or info goes
 * away by itself once read; an error stays until dismissed or the next page.
 */
function flashNotice(kind, text) {
  const box = message(kind, text);
  box.classList.add('flash');
  const close = h('button', { type: 'button', class: 'button-quiet dismiss', 'aria-label': 'Dismiss this message', text: '×' });
  const remove = () => {
    // Leave focus on the page, not on a button that is gone.
    if (box.contains(document.activeElement)) main.focus();
    box.remove();
  };
  close.addEventListener('click', remove);
  box.append(close);
  if (kind !== 'error') setTimeout(remove, FLASH_MS);
  return box;
}

function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { parts: path.split('/').filter(Boolean), query: new URLSearchParams(query) };
}

function markNav(name) {
  for (const link of document.querySelectorAll('#nav a[data-route]')) {
    if (link.getAttribute('data-route') === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const { parts, query } = parseHash(location.hash);
  const name = parts[0] || 'jobs';
  if (!session && name !== 'signin') {
    sessionStorage.setItem(NEXT_KEY, location.hash || '#/jobs');
    location.replace('#/signin');
    return;
  }
  if (session && name === 'signin') {
    location.replace('#/jobs');
    return;
  }
  const view = h('div', { class: 'view' });
  const notice = flash ? flashNotice(flash.kind, flash.text) : null;
  flash = null;
  replace(main, notice, view);
  const ctx = {
    api: session ? session.api : null,
    claims: session ? session.claims : null,
    isAdmin: Boolean(session && session.claims.role === 'admin'),
    navigate,
    /** @param {string} text */
    title(text) {
      document.title = `${text} · nosyntask console`;
    },
    /** Workflow types, fetched once per session. */
    types() {
      if (!session) return Promise.reject(new Error('signed out'));
      if (!session.types) {
        const current = session;
        current.types = current.api.types().catch((err) => {
          current.types = null;
          throw err;
        });
      }
      return session.types;
    },
    flash(kind, text) {
      flash = { kind, text };
    },
  };
  markNav(name);
  if (name === 'signin') cleanup = renderSignIn(view, ctx, signIn);
  else if (name === 'jobs' && parts[1]) cleanup = renderJob(view, ctx, parts[1]);
  else if (name === 'jobs') cleanup = renderJobs(view, ctx, query);
  else if (name === 'start') cleanup = renderStart(view, ctx, query);
  else if (name === 'admin') cleanup = renderAdmin(view, ctx);
  else {
    ctx.title('Not found');
    replace(view, h('h1', { text: 'Page not found' }), h('p', {}, h('a', { href: '#/jobs', text: 'Back to the jobs' })));
  }
  if (!firstRender) {
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    } else {
      main.focus();
    }
  }
  firstRender = false;
}

session = loadSession();
updateChrome();
document.getElementById('sign-out')?.addEventListener('click', () => signOut({ kind: 'info', text: 'Signed out.' }));
window.addEventListener('hashchange', route);
window.addEventListener('storage', (event) => {
  // Signed in or out in another tab.
  if (event.key !== TOKEN_KEY) return;
  session = loadSession();
  updateChrome();
  route();
});
route();
