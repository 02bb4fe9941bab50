import { strict as assert } from "node:assert";
import { join } from "node:path";
import { readStackFile, StackFile } from "../../../components/config/stack-file";
import { newestOnLine, SUPPORTED_LINES } from "../../../components/config/releases";
import { checkStackFile } from "../../../components/stack/load";
import { renderTree } from "../../../tools/tree";
import { ENVS, FIXTURE_SAMPLES, REPO } from "../../helpers/samples";

/**
 * Issue 24, "CI validates and renders every sample stack against each supported minor": each
 * sample stack file (Pulumi.<env>.yaml and the test fixtures' stacks) with its k3s.version
 * replaced by the newest known patch of each supported line (releases.ts SUPPORTED_LINES and
 * KNOWN_RELEASES, never a list of its own here), through the same check the program and `npm run
 * render` run (checkStackFile), then rendered (renderTree). A flag or value the table says a
 * newer minor removed or renamed fails here, in CI, not on a host.
 */

const SAMPLE_FILES: Record<string, string> = {
  ...Object.fromEntries(ENVS.map((env) => [env, join(REPO, `Pulumi.${env}.yaml`)])),
  ...FIXTURE_SAMPLES,
};

/** The stack file with `k3s.version` pinned to `version` (a channel, if any, dropped: the pin is what is checked). */
function pinned(file: StackFile, version: string): StackFile {
  const raw = structuredClone(file.raw) as { k3s?: Record<string, unknown> };
  raw.k3s = { ...raw.k3s, version };
  delete raw.k3s.channel;
  return { ...file, raw };
}

/** Warnings about the pinned release itself (unknown, past support, a refused next upgrade): none is expected for a supported line's newest release. */
const releaseWarnings = (warnings: ReadonlyArray<{ path: string; message: string }>) => warnings.filter((w) => w.path.endsWith("k3s.version") || /newer than the newest|past end of support/.test(w.message));

describe("every sample stack validates and renders on each supported K3s minor (issue 24)", () => {
  it("the supported lines come from the release table: three lines, each with a known newest patch", () => {
    assert.equal(SUPPORTED_LINES.length, 3);
    for (const minor of SUPPORTED_LINES) assert.ok(newestOnLine(minor), `no known release on v1.${minor}`);
  });

  it("the release warnings this checks for are there for a line past support and an unknown release (the check can fail)", () => {
    const dev = readStackFile(SAMPLE_FILES.dev!);
    const old = checkStackFile(pinned(dev, newestOnLine(Math.min(...SUPPORTED_LINES) - 1)!.version));
    assert.ok(releaseWarnings(old.warnings).length > 0, JSON.stringify(old.warnings));
    const unknown = checkStackFile(pinned(dev, `v1.${Math.max(...SUPPORTED_LINES) + 1}.0+k3s1`));
    assert.ok(releaseWarnings(unknown.warnings).length > 0, JSON.stringify(unknown.warnings));
  });

  it("a sample with a setting a supported release renamed fails here (Traefik chart v40: providers.kubernetesIngressNginx, config/packaged.ts)", () => {
    const file = readStackFile(SAMPLE_FILES.staging!);
    const raw = structuredClone(file.raw) as { k3s: { traefik?: { values: Record<string, unknown> } } };
    raw.k3s.traefik = { values: { ...raw.k3s.traefik?.values, providers: { kubernetesIngressNginx: { enabled: true } } } };
    const failing = SUPPORTED_LINES.filter((minor) => !checkStackFile(pinned({ ...file, raw }, newestOnLine(minor)!.version)).ok);
    assert.deepEqual(failing, SUPPORTED_LINES, "the newest patch of every supported line packages the v40 chart");
  });

  for (const [sample, path] of Object.entries(SAMPLE_FILES)) {
    for (const minor of SUPPORTED_LINES) {
      const version = newestOnLine(minor)!.version;
      it(`${sample} on ${version}`, () => {
        const result = checkStackFile(pinned(readStackFile(path), version));
        assert.ok(result.ok, `${path} pinned to ${version}:\n${result.ok ? "" : result.issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`);
        assert.deepEqual(releaseWarnings(result.warnings), [], `${path} pinned to ${version}: release warnings`);
        const tree = renderTree(result.config, readStackFile(path).secrets);
        assert.ok(tree.size > 0);
        for (const [file, text] of tree) assert.doesNotMatch(text, /\bundefined\b|\[object Object\]/, `${sample} on ${version}: ${file}`);
      });
    }
  }
});
