// Every hook and example renders under <StrictMode>, as in a development build of the frontend:
// effects mount, unmount and mount again, and callbacks must still fire once.
import { configure } from '@testing-library/react';
import { afterAll } from 'vitest';

configure({ reactStrictMode: true });

// The last unmount of a file schedules React's passive-effect flush on the next macrotask; let it
// run before the jsdom environment is torn down (else "window is not defined" after the file).
afterAll(async () => {
  await new Promise((resolve) => setTimeout(resolve, 50));
});
