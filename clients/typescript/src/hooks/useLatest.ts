'use client';
import { useEffect, useLayoutEffect, useRef, type MutableRefObject } from 'react';

// useLayoutEffect warns during server rendering; nothing here needs it there.
const useIsomorphicLayoutEffect = typeof window === 'undefined' ? useEffect : useLayoutEffect;

/**
 * A ref that always holds the latest `value`, so effects can call the caller's newest callbacks
 * without listing them as dependencies (which would restart polling on every render).
 */
export function useLatest<T>(value: T): MutableRefObject<T> {
  const ref = useRef(value);
  useIsomorphicLayoutEffect(() => {
    ref.current = value;
  });
  return ref;
}

/**
 * Calls a caller's callback and waits for it; a thrown error or rejected promise is logged, not
 * propagated. Resolves with whether it succeeded.
 */
export async function invokeCallback<A extends unknown[]>(
  label: string,
  callback: ((...args: A) => unknown) | undefined,
  ...args: A
): Promise<boolean> {
  if (!callback) return true;
  try {
    await callback(...args);
    return true;
  } catch (error) {
    console.error(`[nosyntask] ${label} failed:`, error);
    return false;
  }
}
