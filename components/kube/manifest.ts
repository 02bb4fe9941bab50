import { stringify } from "yaml";
import { KubeObject } from "./objects";

/** Objects as one multi-document YAML file, the way `kubectl apply -f` (and K3s' deploy controller) read them. */
export function toManifest(objects: KubeObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
}
