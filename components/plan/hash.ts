import { createHash } from "node:crypto";

/** Hex sha256 of a text: the steps' triggers and the bundle's checksum. */
export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
