// Signing in: a token is checked against the server before it is kept.

import { Api, ApiError, tokenClaims } from './api.js';
import { h, message, replace } from './dom.js';

/**
 * @param {HTMLElement} view
 * @param {any} ctx
 * @param {(token: string) => void} signIn
 */
export function renderSignIn(view, ctx, signIn) {
  ctx.title('Sign in');
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-hint',
  });
  const show = h('input', { id: 'show-token', type: 'checkbox' });
  show.addEventListener('change', () => {
    input.setAttribute('type', show.checked ? 'text' : 'password');
  });
  const status = h('div', { class: 'form-status' });
  const button = h('button', { type: 'submit', class: 'button-primary', text: 'Sign in' });
  const form = h(
    'form',
    { class: 'card narrow', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'token', text: 'Access token (JWT)' }),
      input,
      h('p', { id: 'token-hint', class: 'hint' },
        'A NanoStory token, or the development token the server prints at start (the line ',
        h('code', { text: 'export TOKEN=…' }),
        '). It is kept in this browser until you sign out.'),
    ),
    h('div', { class: 'field field-inline' }, show, h('label', { for: 'show-token', text: 'Show the token' })),
    status,
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim().replace(/^(export\s+)?TOKEN=/, '').replace(/^Bearer\s+/i, '');
    const fail = (text) => {
      replace(status, message('error', text));
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    };
    if (!token) return fail('Paste a token first.');
    const claims = tokenClaims(token);
    if (!claims) return fail('This is not a JWT: it should be three base64url parts separated by dots.');
    if (claims.exp && claims.exp * 1000 <= Date.now()) return fail('This token has expired.');
    button.disabled = true;
    replace(status, message('info', 'Checking the token…'));
    try {
      await new Api(token, null).types();
      signIn(token);
    } catch (err) {
      const text = err instanceof ApiError && err.status === 401
        ? `The server refused this token: ${err.message}.`
        : `Cannot check the token: ${err.message}`;
      fail(text);
    } finally {
      button.disabled = false;
    }
  });
  replace(
    view,
    h('h1', { text: 'Sign in to the nosyntask console' }),
    h('p', { class: 'lead' }, 'Watch workflow jobs run, inspect their steps and results, and start new ones.'),
    form,
  );
  input.focus();
  return () => {};
}
