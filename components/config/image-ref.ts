/**
 * Container image references as the OCI distribution reference grammar reads them
 * (github.com/distribution/reference, reference.go and normalize.go): `[registry/]path[:tag][@digest]`,
 * where the first path component is a registry only when it contains a `.` or a `:` or is
 * `localhost`; otherwise the image lives on Docker Hub (`docker.io`, path prefixed with `library/`
 * for a single component). Pure.
 */

export interface ImageRef {
  /** `registry.k8s.io`, `ghcr.io`, `registry.example.com:5000`, `docker.io`. */
  registry: string;
  /** `dns/k8s-dns-node-cache`; Docker Hub single names as `library/<name>`. */
  path: string;
  tag?: string;
  /** `sha256:<64 hex>`. */
  digest?: string;
}

export function parseImageRef(image: string): ImageRef {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf("/");
  const first = slash >= 0 ? rest.slice(0, slash) : "";
  const hasRegistry = slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost");
  const registry = hasRegistry ? first : "docker.io";
  let path = hasRegistry ? rest.slice(slash + 1) : rest;
  let tag: string | undefined;
  const colon = path.lastIndexOf(":");
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  if (registry === "docker.io" && !path.includes("/")) path = `library/${path}`;
  return { registry, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Whether `image` carries a `@sha256:` digest (a tag alone can be re-pushed). */
export function hasDigest(image: string): boolean {
  return /@sha256:[a-f0-9]{64}$/.test(image);
}
