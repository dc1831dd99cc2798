// Type-checked linting for the whole repository. The rule that matters most in a controller is
// no-floating-promises: a lost promise is a silently dead loop.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

const ioModules = [
  "@kubernetes/client-node",
  "express",
  "node:http",
  "node:https",
  "node:fs",
  "node:fs/promises",
  "node:child_process",
  "node:net",
  "undici",
];

export default defineConfig(
  { ignores: ["**/node_modules/**", "**/dist/**", ".testbed/**", "bench/results/**", "charts/**", "crds/**"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js", "prettier.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-unnecessary-condition": "off",
      // @kubernetes/client-node models are classes, but its API takes (and JSON gives) plain objects.
      "@typescript-eslint/no-unsafe-class-instance-assignment": "off",
    },
  },
  {
    // The operator talks to the API server with node's own HTTPS client (controller/kube-client.ts):
    // client-node's runtime pulls its whole generated API into memory (~80 MiB), and undici ~25 MiB.
    // Their types are fine. (The pure modules' rule below repeats both.)
    files: ["operator/src/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: ["@kubernetes/client-node", "undici"].map((name) => ({
            name,
            allowTypeImports: true,
            message: "The operator loads no client library at run time; use controller/kube-client.ts.",
          })),
        },
      ],
    },
  },
  {
    // Pure code never does I/O: desired-state builders, status, recommender, codecs, batcher.
    files: [
      "operator/src/reconcile/**",
      "operator/src/autoscaler/recommender.ts",
      "operator/src/autoscaler/queries.ts",
      "operator/src/autoscaler/autoscaling-status.ts",
      "operator/src/api/**",
      "serving-image/src/protocol/**",
      "serving-image/src/batching/**",
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: ioModules.map((name) => ({
            name,
            allowTypeImports: true,
            message: "Pure modules may not do I/O; move it to the controller or HTTP layer.",
          })),
        },
      ],
    },
  },
  {
    files: ["test/**"],
    rules: {
      "@typescript-eslint/no-unused-expressions": "off",
    },
  },
);
