import { z } from "zod";
import { singleLine } from "../single-line";
import { DNS_LABEL, duration } from "./primitives";

/** The `encryption` section (secrets encryption at rest). */

// ---------------------------------------------------------------- secrets encryption

export const ENCRYPTION_PROVIDERS = ["secretbox", "aesgcm", "aescbc", "kms", "identity"] as const;
export type EncryptionProviderType = (typeof ENCRYPTION_PROVIDERS)[number];
/** Providers whose keys k3s-platform holds (as the secure key encryptionKeys, or generated). */
export const KEYED_PROVIDERS = ["secretbox", "aesgcm", "aescbc"] as const;
export type KeyedProvider = (typeof KEYED_PROVIDERS)[number];

export const encryptionSchema = z.strictObject({
  enabled: z.boolean().optional().describe("Default: on when hardening is cis, off otherwise. Must be on at the cluster's first start."),
  mode: z.enum(["k3s", "custom"]).default("k3s").describe("`k3s`: K3s generates and manages the key; `custom`: k3s-platform renders the EncryptionConfiguration."),
  provider: z.enum(["aescbc", "secretbox"]).default("aescbc").describe("K3s-managed provider (`secrets-encryption-provider`); K3s' own default is aescbc."),
  custom: z
    .strictObject({
      resources: z
        .array(
          z.strictObject({
            resources: z.array(z.string().regex(/^(\*\.\*|\*\.[a-z0-9.-]+|[a-z0-9-]+(\.[a-z0-9.-]+)?)$/, "resource must be name[.group], *.group or *.*")).min(1).describe("e.g. secrets, configmaps, *.apps, *.* (wildcards as in EncryptionConfiguration)."),
            providers: z.array(z.enum(ENCRYPTION_PROVIDERS)).min(1).describe("In order: the first encrypts new writes, all are tried on read."),
          }),
        )
        .min(1).describe("Rules in order: resource types and their providers (an EncryptionConfiguration's resources)."),
      kms: z
        .strictObject({
          name: z.string().regex(DNS_LABEL, "KMS plugin name must be a DNS label").describe("The KMS v2 plugin's name."),
          endpoint: singleLine(z.string().regex(/^unix:\/\/\/.+/, "KMS endpoint must be unix:///path/to/socket")).describe("The plugin's socket, `unix:///path`."),
          timeout: duration.default("3s").describe("Timeout of a KMS call."),
        })
        .optional().describe("A KMS v2 provider (for `kms` in providers)."),
    })
    .optional().describe("`custom` mode: the EncryptionConfiguration k3s-platform renders (keys: the secure key encryptionKeys, generated when absent)."),
  rotation: z.union([singleLine().min(1), z.number()]).optional().describe("Bump (a counter or a date) to rotate keys; each change runs one rotation."),
});
