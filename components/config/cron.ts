/**
 * Cron schedules as K3s reads `etcd-snapshot-schedule-cron`: robfig/cron v3's standard parser
 * (five fields: minute hour day-of-month month day-of-week; `*`, `?`, lists, ranges, `/step`,
 * month and weekday names) plus its descriptors (`@yearly`, `@annually`, `@monthly`, `@weekly`,
 * `@daily`, `@midnight`, `@hourly`, `@every <duration>`). Source: robfig/cron v3 parser.go.
 */

const FIELDS: Array<{ name: string; min: number; max: number; names?: string[] }> = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] },
  { name: "day of week", min: 0, max: 6, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];
const DESCRIPTORS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

function value(text: string, field: (typeof FIELDS)[number]): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const i = field.names?.indexOf(text.toLowerCase()) ?? -1;
  return i >= 0 ? i + field.min : undefined;
}

/** Undefined when valid, else what is wrong. */
export function cronProblem(spec: string): string | undefined {
  const s = spec.trim();
  if (s.startsWith("@")) {
    if (DESCRIPTORS.includes(s)) return undefined;
    const every = /^@every (.+)$/.exec(s);
    if (every && GO_DURATION.test(every[1]!)) return undefined;
    return `unknown descriptor "${s}" (use @hourly, @daily, @weekly, @monthly, @yearly or @every <duration>)`;
  }
  const parts = s.split(/\s+/);
  if (parts.length !== 5) return `expected 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`;
  for (let i = 0; i < 5; i++) {
    const field = FIELDS[i]!;
    for (const item of parts[i]!.split(",")) {
      const m = /^(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
      if (!m) return `${field.name} "${item}" is not a value, range, list or step`;
      if (m[2] !== undefined && Number(m[2]) < 1) return `${field.name} step must be at least 1`;
      if (m[1] === "*" || m[1] === "?") continue;
      const [lo, hi] = m[1]!.split("-");
      const a = value(lo!, field);
      const b = hi === undefined ? a : value(hi, field);
      if (a === undefined || b === undefined) return `${field.name} "${item}" is not a number or name`;
      if (a < field.min || b > field.max || a > b) return `${field.name} "${item}" is outside ${field.min}-${field.max}`;
    }
  }
  return undefined;
}
