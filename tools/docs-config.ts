import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference } from "../components/config/reference";
import { runCli } from "./cli";

// Writes docs/configuration-reference.md from the zod schema (test/components/config/reference.test.ts keeps it current).
void runCli(
  {
    name: "docs:config",
    usage: ["npm run docs:config"],
    description: "Writes docs/configuration-reference.md from the configuration schema (components/config/schema).",
    options: {},
  },
  () => {
    const out = join(__dirname, "..", "docs", "configuration-reference.md");
    writeFileSync(out, renderConfigReference());
    console.log(`wrote ${out}`);
  },
);
