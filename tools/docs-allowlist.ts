import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderAllowlistMarkdown } from "../components/config/allowlist";
import { runCli } from "./cli";

// Writes docs/allowlist.md from the allowlist table (test/components/config/allowlist.test.ts keeps it current).
void runCli(
  {
    name: "docs:allowlist",
    usage: ["npm run docs:allowlist"],
    description: "Writes docs/allowlist.md from the allowlist table (components/config/allowlist.ts).",
    options: {},
  },
  () => {
    const out = join(__dirname, "..", "docs", "allowlist.md");
    writeFileSync(out, renderAllowlistMarkdown());
    console.log(`wrote ${out}`);
  },
);
