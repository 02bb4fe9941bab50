import { readFileSync } from "node:fs";

/** GitHub's heading anchor: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
export function headingAnchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** The anchors of a Markdown file's headings (outside fenced code blocks, where `#` is a comment). */
export function pageAnchors(file: string): string[] {
  const anchors: string[] = [];
  let fence: string | undefined;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const f = /^(`{3,})/.exec(line);
    if (f) {
      if (fence === undefined) fence = f[1];
      else if (line.trim() === fence) fence = undefined;
      continue;
    }
    if (fence === undefined && /^#+ /.test(line)) anchors.push(headingAnchor(line.replace(/^#+ /, "")));
  }
  return anchors;
}
