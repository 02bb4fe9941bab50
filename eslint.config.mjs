// ESLint (flat config). `npm test` runs it before mocha, so CI does too.
import tseslint from "typescript-eslint";

/**
 * Names the CommonJS module wrapper gives every file, which TypeScript's CommonJS emit (the one
 * ts-node uses) also relies on: `export const X` is read back as `exports.X`. A binding of one of
 * these names, in any scope and any form (variable, parameter, function, class, import,
 * destructuring, catch), changes what that code resolves to under one compiler and not under
 * another: a local `const exports` sent K3S_IMAGES=undefined to every air-gapped host while every
 * tsx-run suite passed.
 */
const COMMONJS_NAMES = new Set(["exports", "module", "require", "__filename", "__dirname"]);

/** Reports every declared binding named like a CommonJS wrapper name (scope analysis: all forms). */
const noCommonjsNameBinding = {
  meta: {
    type: "problem",
    docs: { description: "disallow declaring exports, module, require, __filename or __dirname" },
    schema: [],
    messages: { shadow: "'{{name}}' is a CommonJS module name: a binding of it changes what exported names resolve to under TypeScript's CommonJS emit. Rename it." },
  },
  create(context) {
    return {
      "Program:exit"(node) {
        const reported = new Set(); // a class name is defined in its own scope and the outer one
        const todo = [context.sourceCode.getScope(node)];
        while (todo.length) {
          const scope = todo.pop();
          todo.push(...scope.childScopes);
          for (const variable of scope.variables) {
            if (!COMMONJS_NAMES.has(variable.name)) continue;
            for (const def of variable.defs) {
              if (reported.has(def.name)) continue;
              reported.add(def.name);
              context.report({ node: def.name, messageId: "shadow", data: { name: variable.name } });
            }
          }
        }
      },
    };
  },
};

export default tseslint.config(
  { ignores: ["node_modules/**", "policies/node_modules/**", "out/**"] },
  {
    files: ["**/*.ts", "**/*.js", "**/*.mjs"],
    languageOptions: { parser: tseslint.parser, sourceType: "module" },
    plugins: { "k3s-platform": { rules: { "no-commonjs-name-binding": noCommonjsNameBinding } } },
    rules: { "k3s-platform/no-commonjs-name-binding": "error" },
  },
);
