import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderAllowlistMarkdown } from "../components/config/allowlist";

// Writes docs/allowlist.md from the allowlist table (test/components/config/allowlist.test.ts keeps it current).
const out = join(__dirname, "..", "docs", "allowlist.md");
writeFileSync(out, renderAllowlistMarkdown());
console.log(`wrote ${out}`);
