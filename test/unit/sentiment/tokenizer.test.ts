import assert from "node:assert/strict";
import { readReviews, SEQUENCE_LENGTH, shuffled, split, unseenSentences } from "../../../scripts/sentiment/reviews.ts";
import { buildTokenizer, encode, OOV, PAD, vocabularySize, words } from "../../../scripts/sentiment/tokenizer.ts";

describe("the sentiment model's tokenizer", () => {
  for (const [text, want] of [
    ["I loved it!", ["i", "loved", "it"]],
    ["  Great   value,  FAST delivery.", ["great", "value", "fast", "delivery"]],
    ["it's a must-see", ["it's", "a", "must", "see"]],
    ["", []],
  ] as const) {
    it(`splits ${JSON.stringify(text)} into lowercase words without punctuation`, () => {
      assert.deepEqual(words(text), want);
    });
  }

  it("numbers words by frequency from 2, ties in the order first seen (0 pads, 1 is an unknown word)", () => {
    const t = buildTokenizer(["b a", "a c", "c a b"], 4, 100);
    assert.deepEqual(t.wordIndex, { a: 2, b: 3, c: 4 });
    assert.equal(vocabularySize(t), 5);
  });

  it("keeps only the most frequent words when asked for fewer", () => {
    assert.deepEqual(buildTokenizer(["c a", "a b", "b a c", "d"], 4, 2).wordIndex, { a: 2, c: 3 });
  });

  it("pads short texts with 0 in front, keeps the last words of long ones, and maps unknown words to 1", () => {
    const t = buildTokenizer(["a b c d e"], 3, 100);
    assert.deepEqual(encode("a", t), [PAD, PAD, 2]);
    assert.deepEqual(encode("a zzz", t), [PAD, 2, OOV]);
    assert.deepEqual(encode("a b c d e", t), [4, 5, 6]);
    assert.deepEqual(encode("", t), [PAD, PAD, PAD]);
  });

  it("always encodes to sequenceLength indices the embedding accepts", () => {
    const t = buildTokenizer(["the cat sat on the mat", "a dog"], 5, 100);
    for (const text of [
      "",
      "the",
      "the cat sat on the mat and the dog sat too",
      "unknown words only",
      "constructor __proto__",
    ]) {
      const row = encode(text, t);
      assert.equal(row.length, 5);
      assert.ok(
        row.every((i) => Number.isInteger(i) && i >= 0 && i < vocabularySize(t)),
        `${text}: ${row.join(",")}`,
      );
    }
  });
});

describe("the sentiment model's labelled reviews (scripts/sentiment/reviews.tsv)", () => {
  it("hold as many positive as negative reviews in both the training and the held-out split", async () => {
    const { train, heldOut } = split(await readReviews());
    for (const set of [train, heldOut]) {
      assert.ok(set.length > 0);
      assert.equal(set.filter((r) => r.positive).length * 2, set.length);
    }
  });

  it("know every word of the sentences the demo asks about, which are not reviews themselves", async () => {
    const reviews = await readReviews();
    const t = buildTokenizer(
      split(reviews).train.map((r) => r.text),
      SEQUENCE_LENGTH,
      10_000,
    );
    for (const s of unseenSentences) {
      assert.ok(!encode(s, t).includes(OOV), `every word of "${s}" is in the vocabulary`);
      assert.ok(!reviews.some((r) => r.text === s));
    }
  });

  it("fit in the model's input: no review has more words than SEQUENCE_LENGTH", async () => {
    const long = (await readReviews()).filter((r) => words(r.text).length > SEQUENCE_LENGTH);
    assert.deepEqual(long, []);
  });
});

describe("the training set's fixed shuffle", () => {
  it("is a permutation, the same for the same seed and another for another seed", () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const a = shuffled(items, 11);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      items,
    );
    assert.deepEqual(shuffled(items, 11), a);
    assert.notDeepEqual(a, items);
    assert.notDeepEqual(shuffled(items, 12), a);
  });
});
