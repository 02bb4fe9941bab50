/** The steps of `pulumi preview --json` as the preview Markdown reads them (preview-markdown.ts, preview-lifecycle.ts). */

export interface PropertyDiff {
  kind: string;
  inputDiff?: boolean;
}

export interface PreviewState {
  type?: string;
  inputs?: Record<string, unknown>;
  parent?: string;
  /** The resource option (apitype ResourceV3 `protect`). */
  protect?: boolean;
}

export interface PreviewStep {
  op: string;
  urn: string;
  oldState?: PreviewState;
  newState?: PreviewState;
  diffReasons?: string[];
  replaceReasons?: string[];
  detailedDiff?: Record<string, PropertyDiff> | null;
}
