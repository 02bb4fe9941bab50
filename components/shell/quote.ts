/** POSIX single-quote a value so the shell passes it through verbatim. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A heredoc body must not contain its terminator line; pick one that is absent. */
export function heredoc(body: string, tag = "EOF"): { open: string; close: string } {
  let t = tag;
  while (body.split("\n").includes(t)) t = `${t}_`;
  return { open: `<<'${t}'`, close: t };
}
