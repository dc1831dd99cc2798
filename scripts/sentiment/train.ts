/**
 * Trains the text classifier maas was born for (../shared/DESIGN.md §0: a tokenizer, padded sequences,
 * Embedding ▸ LSTM ▸ Dense(1, sigmoid), Adam, binary cross-entropy), scaled down so TF.js trains it in
 * seconds on the CPU backend: the reviews in reviews.tsv, 10 words per sentence, 16-wide embedding and
 * LSTM. Saves it as a TF.js layers model (model.json + weights.bin) with the tokenizer's vocabulary in
 * model.json's userDefinedMetadata. `node scripts/sentiment/train.ts <dir>` does it from the shell.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { readReviews, SEQUENCE_LENGTH, shuffled, split, type Review } from "./reviews.ts";
import { buildTokenizer, encode, vocabularySize, type TokenizerConfig } from "./tokenizer.ts";

/** The model's input and output names (what /v2 metadata reports, what /v1 `inputs` may name). */
export const SentimentTensors = { input: "tokens", output: "positive" } as const;
export interface TrainedModel {
  dir: string;
  tokenizer: TokenizerConfig;
  seconds: number;
  epochs: number;
  trainAccuracy: number;
  heldOutAccuracy: number;
  trainCount: number;
  heldOutCount: number;
}

/** Trains on the training split of reviews.tsv, reports accuracy on both splits, saves the model in `dir`. */
export async function trainSentimentModel(dir: string, epochs = 12): Promise<TrainedModel> {
  const started = performance.now();
  // The cpu backend: wasm has no kernel for the embedding's gradient (UnsortedSegmentSum).
  await tf.setBackend("cpu");
  tf.enableProdMode();
  const { train: inFileOrder, heldOut } = split(await readReviews());
  // A fixed shuffle and seeded initial weights: the same data and code train the same model (same sha256).
  const train = shuffled(inFileOrder, 11);
  const tokenizer = buildTokenizer(
    train.map((r) => r.text),
    SEQUENCE_LENGTH,
    10_000,
  );
  const tensors = (rs: Review[]) => ({
    x: tf.tensor2d(
      rs.map((r) => encode(r.text, tokenizer)),
      [rs.length, SEQUENCE_LENGTH],
    ),
    y: tf.tensor2d(
      rs.map((r) => [r.positive ? 1 : 0]),
      [rs.length, 1],
    ),
  });

  const tokens = tf.input({ shape: [SEQUENCE_LENGTH], name: SentimentTensors.input });
  const embedded = tf.layers
    .embedding({
      inputDim: vocabularySize(tokenizer),
      outputDim: 16,
      embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: 1 }),
      name: "embedding",
    })
    .apply(tokens) as tf.SymbolicTensor;
  const encoded = tf.layers
    .lstm({
      units: 16,
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      recurrentInitializer: tf.initializers.orthogonal({ gain: 1, seed: 3 }),
      name: "lstm",
    })
    .apply(embedded) as tf.SymbolicTensor;
  const positive = tf.layers
    .dense({
      units: 1,
      activation: "sigmoid",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      name: SentimentTensors.output,
    })
    .apply(encoded) as tf.SymbolicTensor;
  const model = tf.model({ inputs: tokens, outputs: positive });
  model.compile({ optimizer: tf.train.adam(0.03), loss: "binaryCrossentropy", metrics: ["accuracy"] });

  const t = tensors(train);
  const h = tensors(heldOut);
  try {
    await model.fit(t.x, t.y, { epochs, batchSize: 32, shuffle: false });
    const accuracy = (x: tf.Tensor, y: tf.Tensor) =>
      tf.tidy(
        () => (model.predict(x) as tf.Tensor).greater(0.5).equal(y.greater(0.5)).cast("float32").mean().dataSync()[0]!,
      );
    const trainAccuracy = accuracy(t.x, t.y);
    const heldOutAccuracy = accuracy(h.x, h.y);
    await writeLayersModel(model, dir, { tokenizer });
    return {
      dir,
      tokenizer,
      seconds: (performance.now() - started) / 1000,
      epochs,
      trainAccuracy,
      heldOutAccuracy,
      trainCount: train.length,
      heldOutCount: heldOut.length,
    };
  } finally {
    tf.dispose([t.x, t.y, h.x, h.y]);
    model.dispose();
  }
}

/**
 * Saves a layers model as model.json (format layers-model, with `userDefinedMetadata` when given) and one
 * weights.bin, as the TF.js converter lays them out: what a user's TF.js training script would write.
 */
export async function writeLayersModel(
  model: tf.LayersModel,
  dir: string,
  userDefinedMetadata?: Record<string, unknown>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData!;
      const weights = Array.isArray(data) ? Buffer.concat(data.map((b) => Buffer.from(b))) : Buffer.from(data);
      await writeFile(join(dir, "weights.bin"), weights);
      const json = {
        format: "layers-model",
        generatedBy: artifacts.generatedBy,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
        ...(userDefinedMetadata ? { userDefinedMetadata } : {}),
      };
      await writeFile(join(dir, "model.json"), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write("usage: node scripts/sentiment/train.ts <output-dir>\n");
    process.exit(2);
  }
  const r = await trainSentimentModel(dir);
  process.stdout.write(
    `trained in ${r.seconds.toFixed(1)} s: accuracy ${r.trainAccuracy.toFixed(2)} on ${r.trainCount} training ` +
      `sentences, ${r.heldOutAccuracy.toFixed(2)} on ${r.heldOutCount} held out; saved to ${dir}\n`,
  );
}
