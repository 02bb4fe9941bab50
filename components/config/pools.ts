import { POOL_FIELDS } from "./schema/nodes";

/**
 * Node pools (docs/node-pools.md): the one place `pools` is resolved into `nodes`, on the raw
 * values, before the schema and every check run, so everything downstream sees whole nodes.
 * A node naming a pool takes each pool field (POOL_FIELDS) it does not set: plain maps merge key
 * by key, recursively, the node's keys winning (labels, ssh, kubelet and its reserved maps);
 * lists and scalars are replaced whole (a node's `taints: []` drops the pool's taints). Pure.
 */

type Raw = Record<string, unknown>;

const isPlain = (v: unknown): v is Raw => !!v && typeof v === "object" && !Array.isArray(v);

/** `over` on top of `base`: plain maps merge key by key (recursively), anything else is `over` when set. */
export function mergePoolValue(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isPlain(base) || !isPlain(over)) return over;
  const out: Raw = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = mergePoolValue(base[key], value);
  return out;
}

export interface PoolResolution {
  /** The raw values with every pool member's pool fields filled in (`pools` and `pool` kept for the schema). */
  raw: unknown;
  /** The pool a node entry names, when that pool exists. */
  poolOf(nodeIndex: number): string | undefined;
  /**
   * The pool whose value sits at `path` (below `nodes[i]`) of the resolved node, or undefined when
   * the node wrote it (or nobody did). A node's own list or scalar hides the pool's from there down.
   */
  inherited(nodeIndex: number, path: ReadonlyArray<string | number>): string | undefined;
  /** Nodes that name a pool that does not exist: `[nodeIndex, pool, known pools]`. */
  unknown: Array<{ nodeIndex: number; pool: string; known: string[] }>;
}

/** Resolves `pools` into `nodes` (see the module comment). Values without pools come back as they are. */
export function resolvePools(raw: unknown): PoolResolution {
  const root = isPlain(raw) ? raw : undefined;
  const nodes = Array.isArray(root?.nodes) ? (root.nodes as unknown[]) : [];
  const pools = isPlain(root?.pools) ? root.pools : {};
  const named = nodes.map((n) => (isPlain(n) && typeof n.pool === "string" ? n.pool : undefined));
  const poolOf = (i: number) => {
    const name = named[i];
    return name !== undefined && isPlain(pools[name]) ? name : undefined;
  };
  const unknown = named.flatMap((pool, nodeIndex) =>
    pool !== undefined && !Object.hasOwn(pools, pool) ? [{ nodeIndex, pool, known: Object.keys(pools) }] : [],
  );
  const inherited = (nodeIndex: number, path: ReadonlyArray<string | number>): string | undefined => {
    const pool = poolOf(nodeIndex);
    if (pool === undefined || path.length === 0 || !(POOL_FIELDS as readonly (string | number)[]).includes(path[0]!)) return undefined;
    let own: unknown = nodes[nodeIndex];
    let from: unknown = pools[pool];
    for (const key of path) {
      if (!isPlain(own)) return undefined;
      const next = own[key];
      from = isPlain(from) ? from[key] : Array.isArray(from) ? from[Number(key)] : undefined;
      if (next === undefined) return from === undefined ? undefined : pool;
      own = next;
    }
    return undefined;
  };
  if (!root || !named.some((_, i) => poolOf(i) !== undefined)) return { raw, poolOf, inherited, unknown };
  const resolved = nodes.map((node, i) => {
    const pool = poolOf(i);
    if (pool === undefined || !isPlain(node)) return node;
    const shared = pools[pool] as Raw;
    const out: Raw = {};
    // Pool fields first (in the pool's order), then the node's own keys: the resolved entry reads as the node wrote it.
    for (const field of POOL_FIELDS) if (shared[field] !== undefined && node[field] === undefined) out[field] = shared[field];
    for (const [key, value] of Object.entries(node)) out[key] = (POOL_FIELDS as readonly string[]).includes(key) ? mergePoolValue(shared[key], value) : value;
    return out;
  });
  return { raw: { ...root, nodes: resolved }, poolOf, inherited, unknown };
}
