/**
 * The sentiment model's tokenizer, as Keras' Tokenizer and pad_sequences do it (the article maas comes from):
 * lowercase, punctuation dropped, split on whitespace; words numbered by frequency from 2 (0 pads, 1 is
 * the out-of-vocabulary word); sequences cut or padded in front to a fixed length. The vocabulary ships
 * inside the model's model.json (userDefinedMetadata), so a client can encode text the way training did.
 * Pure: no I/O.
 */

/** What a client needs to turn text into the model's input (stored in model.json). */
export interface TokenizerConfig {
  /** Input length: longer texts keep their last words, shorter ones are padded with 0 in front. */
  sequenceLength: number;
  /** Word → index (2, 3, …: most frequent first). */
  wordIndex: Record<string, number>;
}

export const PAD = 0;
export const OOV = 1;

/** The words of `text` as the tokenizer sees them. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}' ]+/gu, " ")
    .split(/\s+/)
    .filter((w) => w !== "");
}

/** A vocabulary of at most `maxWords` words from `texts`, most frequent first (ties: first seen). */
export function buildTokenizer(texts: readonly string[], sequenceLength: number, maxWords: number): TokenizerConfig {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of words(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, maxWords);
  return { sequenceLength, wordIndex: Object.fromEntries(ranked.map(([w], i) => [w, i + 2])) };
}

/** Number of distinct indices the model's embedding must accept (pad, OOV and every word). */
export function vocabularySize(config: TokenizerConfig): number {
  return Object.keys(config.wordIndex).length + 2;
}

/** `text` as the model's input row: `sequenceLength` indices, padded with 0 in front. */
export function encode(text: string, config: TokenizerConfig): number[] {
  const ids = words(text)
    .map((w) => (Object.hasOwn(config.wordIndex, w) ? config.wordIndex[w]! : OOV))
    .slice(-config.sequenceLength);
  return [...new Array<number>(config.sequenceLength - ids.length).fill(PAD), ...ids];
}
