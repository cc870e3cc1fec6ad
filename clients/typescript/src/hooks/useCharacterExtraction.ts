'use client';
import { useExtraction, type UseExtractionProps, type UseExtractionResult } from './useExtraction.js';

/**
 * Character extraction (`character_extraction`) from a script's scenes: start it, follow its
 * progress, pick it up again after a page reload; the finished job is handed to `onCompleted`, then
 * consumed.
 */
export function useCharacterExtraction(props: UseExtractionProps): UseExtractionResult {
  return useExtraction('character_extraction', props);
}
