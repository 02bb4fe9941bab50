/** POSIX single-quote a value so the shell passes it through verbatim. */
export function shellQuote(value: string): string {
  if (value.length < LONG || value.includes("\n")) return quote(value);
  // A long one-line value is a list every node's scripts carry (a NO_PROXY naming every node):
  // quoted once. The Map hashes a string once (V8 keeps the hash in it), so a repeat is one lookup.
  let quoted = longValues.get(value);
  if (quoted === undefined) {
    if (longValues.size >= 16) longValues.clear();
    longValues.set(value, (quoted = quote(value)));
  }
  return quoted;
}
const LONG = 1024;
const longValues = new Map<string, string>();

function quote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A heredoc body must not contain its terminator line; pick one that is absent. */
export function heredoc(body: string, tag = "EOF"): { open: string; close: string } {
  let t = tag;
  while (body.split("\n").includes(t)) t = `${t}_`;
  return { open: `<<'${t}'`, close: t };
}
