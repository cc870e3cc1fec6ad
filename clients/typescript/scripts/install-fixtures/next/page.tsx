// A server component importing the package's main entry point, hooks and provider included: their
// modules are 'use client', so they become client references here instead of calling React's
// client-only APIs (createContext, useState) on the server.
import * as nosyntask from '@nosyntask/client';
import { DEFAULT_INTERVAL_MS, isTerminalStatus, type JobStatus } from '@nosyntask/client';

import { Jobs } from './Jobs';

export default function Page() {
  const status: JobStatus = 'completed';
  return (
    <main>
      <p>
        polling every {DEFAULT_INTERVAL_MS} ms; completed is terminal: {String(isTerminalStatus(status))}
      </p>
      <p>exports: {Object.keys(nosyntask).length}</p>
      <nosyntask.NosyntaskProvider>
        <Jobs projectId={1} />
      </nosyntask.NosyntaskProvider>
    </main>
  );
}
