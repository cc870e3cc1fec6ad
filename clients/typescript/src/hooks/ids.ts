/**
 * The frontend keeps ids as strings (`selectedCharacter?.id?.toString()`) while the workflows take
 * integers: send a numeric string as a number, anything else as it is.
 */
export function numericId(id: string | number | null | undefined): string | number | null {
  if (id === null || id === undefined || id === '') return null;
  if (typeof id === 'number') return id;
  return /^-?\d+$/.test(id) && Number.isSafeInteger(Number(id)) ? Number(id) : id;
}
