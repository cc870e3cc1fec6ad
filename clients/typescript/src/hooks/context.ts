'use client';
import { createContext, createElement, useContext, type ReactNode } from 'react';

import { defaultClient, type NosyntaskClient } from '../client.js';

const ClientContext = createContext<NosyntaskClient>(defaultClient);

/** Props of {@link NosyntaskProvider}. */
export interface NosyntaskProviderProps {
  /** Default `defaultClient` (so a server component can render the provider without one). */
  client?: NosyntaskClient;
  children?: ReactNode;
}

/**
 * Gives the hooks below it another client than `defaultClient` (another server or token source, or
 * separate watchers in tests). Without a provider, hooks use `defaultClient`, which `configure`
 * sets up.
 */
export function NosyntaskProvider({ client, children }: NosyntaskProviderProps) {
  return createElement(ClientContext.Provider, { value: client ?? defaultClient }, children);
}

/** The client of the nearest {@link NosyntaskProvider}, or `defaultClient`. */
export function useNosyntaskClient(): NosyntaskClient {
  return useContext(ClientContext);
}
