// The one-shot model moved to the day-2 wing (components/operations/once.ts), which every
// one-shot step uses; kept here so existing imports keep working.
export * from "../operations/once";
