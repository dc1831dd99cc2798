/**
 * The sentiment model's labelled data set (reviews.tsv, written for the demo) and its split: every
 * fifth review is held out to report accuracy on text the model has not trained on.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

const datasetFile = join(import.meta.dirname, "reviews.tsv");

export interface Review {
  text: string;
  positive: boolean;
}

/** Words per model input; no review is longer (a test holds it). */
export const SEQUENCE_LENGTH = 10;

/** Sentences in no review, for the demo to ask the trained model about (their words are in the training set). */
export const unseenSentences = ["a wonderful film with a great cast", "a boring film with a terrible script"] as const;

/** The labelled reviews of reviews.tsv, in file order. */
export async function readReviews(): Promise<Review[]> {
  return (await readFile(datasetFile, "utf8"))
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => {
      const [label, text, extra] = l.split("\t");
      if ((label !== "0" && label !== "1") || !text || extra !== undefined)
        throw new Error(`${datasetFile}: bad line ${JSON.stringify(l)}`);
      return { text, positive: label === "1" };
    });
}

/** The training set and the held-out set (every fifth review). */
export function split(reviews: readonly Review[]): { train: Review[]; heldOut: Review[] } {
  return {
    train: reviews.filter((_, i) => i % 5 !== 4),
    heldOut: reviews.filter((_, i) => i % 5 === 4),
  };
}

/** `items` in an order fixed by `seed` (Fisher–Yates driven by mulberry32): a shuffle that is the same every run. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
