// Lint config for the VS Code extension (run from the repository root: `npm run lint`).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["extension/out/**", "extension/dist/**", "**/*.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    files: ["extension/**/*.ts"],
    languageOptions: {
      parserOptions: {
        project: ["./extension/tsconfig.test.json"],
        tsconfigRootDir: import.meta.dirname + "/..",
      },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      // Trips on VS Code's own interface-typed disposables (OutputChannel, StatusBarItem).
      "@typescript-eslint/no-unsafe-class-instance-assignment": "off",
      eqeqeq: ["error", "always"],
      curly: ["error", "multi-line"],
    },
  },
  {
    // node:test's test() returns a promise the runner awaits; tests narrow with assert.
    files: ["extension/test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-floating-promises": "off",
      "@typescript-eslint/no-unnecessary-condition": "off",
      "@typescript-eslint/no-deprecated": "off",
    },
  },
  {
    files: ["extension/**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: { process: "readonly", console: "readonly", URL: "readonly", setTimeout: "readonly", fetch: "readonly" },
    },
  },
);
