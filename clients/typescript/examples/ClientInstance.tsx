import type { ReactNode } from 'react';
import { NosyntaskClient, NosyntaskProvider } from '@nosyntask/client';

// A client of its own (another server, another token source); hooks below the provider use it,
// and share one watcher per job between them.
const client = new NosyntaskClient({
  baseUrl: 'https://tasks.example.com',
  getToken: () => sessionStorage.getItem('token'),
});

export function App({ children }: { children: ReactNode }) {
  return <NosyntaskProvider client={client}>{children}</NosyntaskProvider>;
}
