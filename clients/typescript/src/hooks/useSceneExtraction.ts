'use client';
import { useExtraction, type UseExtractionProps, type UseExtractionResult } from './useExtraction.js';

/**
 * Scene (location) extraction (`scene_extraction`) from a script's scenes: start it, follow its
 * progress, pick it up again after a page reload; the finished job is handed to `onCompleted`, then
 * consumed.
 */
export function useSceneExtraction(props: UseExtractionProps): UseExtractionResult {
  return useExtraction('scene_extraction', props);
}
