// Shared test plumbing: tokens signed with the test server's secret, a fresh user and project per
// test (so `active` lists never mix), and waiting on a condition with a deadline instead of sleeping.
import jwt from 'jsonwebtoken';
import { inject } from 'vitest';

import { configure } from '../src/index';

let counter = 0;

/** A user id no other test uses. */
export function freshId(): number {
  counter += 1;
  return (process.pid % 10_000) * 100_000 + Math.floor(Math.random() * 1_000) * 100 + counter;
}

/** An HS256 token of the test server for `userId`. */
export async function tokenFor(userId: number, role: 'user' | 'admin' = 'user'): Promise<string> {
  // jsonwebtoken signs with node:crypto, which jsdom does not replace (WebCrypto-based libraries
  // see jsdom's globals and fail here).
  return jwt.sign({ userId, role }, inject('jwtSecret'), { algorithm: 'HS256', expiresIn: '1h' });
}

/** Points the client at the test server as a new user; returns the user and a project id. */
export async function asNewUser(options: { countRequests?: boolean } = {}): Promise<{
  userId: number;
  projectId: number;
  requests: string[];
}> {
  const userId = freshId();
  const token = await tokenFor(userId);
  const requests: string[] = [];
  configure({
    baseUrl: inject('serverUrl'),
    getToken: async () => token,
    fetch: (input, init) => {
      if (options.countRequests) requests.push(`${init?.method ?? 'GET'} ${String(input)}`);
      return fetch(input, init);
    },
  });
  return { userId, projectId: freshId(), requests };
}

/** Waits until `check` resolves truthy (retrying every 20 ms), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
