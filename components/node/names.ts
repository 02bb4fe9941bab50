/** Moved to components/names.ts (one names module); re-exported for code written against this path. */
export { NODE_CHILDREN, nodeChildNames } from "../names";
