/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4),
 * for the tests of `/metrics`: every line must be a `# HELP`, a `# TYPE` or
 * a sample of the family its `# TYPE` announced; names, labels, escapes and
 * values are checked, and so are the rules of counters (`_total`) and
 * histograms (cumulative buckets ending with `+Inf` = `_count`, a `_sum`).
 * It throws on the first violation, naming the line.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: ${JSON.stringify(text)} is not a float`);
  return Number(text);
}

/** Parses `{a="x",b="y\"z"}` starting at `i` (the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, start: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (line[i] !== '}') {
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!m) throw new Error(`${where}: bad label name at column ${i}`);
    const key = m[0];
    if (!LABEL.test(key) || key.startsWith('__')) throw new Error(`${where}: reserved or bad label ${key}`);
    if (key in labels) throw new Error(`${where}: label ${key} twice`);
    i += key.length;
    if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`${where}: expected =" after ${key}`);
    i += 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = line[i + 1];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else throw new Error(`${where}: bad escape \\${n}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[key] = value;
    i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected , or } at column ${i}`);
  }
  return [labels, i + 1];
}

/** The families of an exposition, keyed by name; throws on any malformed line. */
export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  let current: Family | undefined;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, n) => {
    const where = `line ${n + 1} ${JSON.stringify(line.slice(0, 120))}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)\b/.test(line)) throw new Error(`${where}: malformed ${line.slice(2, 6)}`);
        return; // a comment
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\[^n\\]/.test(rest)) throw new Error(`${where}: bad escape in HELP`);
        helps.set(name, rest);
        return;
      }
      if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
      if (families.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
      current = { name, help: helps.get(name) ?? '', type: rest as Family['type'], samples: [] };
      families.set(name, current);
      return;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) throw new Error(`${where}: not a sample`);
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') [labels, i] = parseLabels(line, i, where);
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
    const parts = line.slice(i + 1).split(' ');
    if (parts.length < 1 || parts.length > 2 || parts[0] === '') throw new Error(`${where}: expected a value and an optional timestamp`);
    const value = parseValue(parts[0] as string, where);
    if (parts.length === 2 && !/^-?\d+$/.test(parts[1] as string)) throw new Error(`${where}: bad timestamp`);
    if (!current) throw new Error(`${where}: a sample before any TYPE`);
    const base = current.name;
    const allowed =
      current.type === 'histogram' ? [`${base}_bucket`, `${base}_sum`, `${base}_count`] : current.type === 'summary' ? [base, `${base}_sum`, `${base}_count`] : [base];
    if (!allowed.includes(name)) throw new Error(`${where}: sample ${name} does not belong to the family ${base} (${current.type})`);
    if (current.type === 'counter' && (!(value >= 0) || !base.endsWith('_total'))) throw new Error(`${where}: a counter must be named *_total and be ≥ 0`);
    if (name.endsWith('_bucket') && current.type === 'histogram' && labels.le === undefined) throw new Error(`${where}: a bucket without le`);
    current.samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    // Group the buckets by their other labels: cumulative, ending at +Inf, which equals _count.
    const series = new Map<string, Sample[]>();
    const key = (l: Record<string, string>) =>
      JSON.stringify(
        Object.entries(l)
          .filter(([k]) => k !== 'le')
          .sort(),
      );
    for (const s of f.samples) if (s.name.endsWith('_bucket')) series.set(key(s.labels), [...(series.get(key(s.labels)) ?? []), s]);
    for (const [k, buckets] of series) {
      let previousLe = Number.NEGATIVE_INFINITY;
      let previous = 0;
      for (const b of buckets) {
        const le = parseValue(b.labels.le as string, `${f.name} le`);
        if (!(le > previousLe)) throw new Error(`${f.name}${k}: buckets not in increasing le order`);
        if (b.value < previous) throw new Error(`${f.name}${k}: buckets not cumulative`);
        previousLe = le;
        previous = b.value;
      }
      if (previousLe !== Number.POSITIVE_INFINITY) throw new Error(`${f.name}${k}: no +Inf bucket`);
      const count = f.samples.find((s) => s.name === `${f.name}_count` && key(s.labels) === k);
      const sum = f.samples.find((s) => s.name === `${f.name}_sum` && key(s.labels) === k);
      if (!count || count.value !== previous) throw new Error(`${f.name}${k}: _count ${count?.value} differs from the +Inf bucket ${previous}`);
      if (!sum) throw new Error(`${f.name}${k}: no _sum`);
    }
  }
  return families;
}

/** The value of the sample `name` whose labels include `labels` (0 when there is none: a series not yet created). */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family =
    families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, '')) ?? undefined;
  if (!family) return 0;
  const matches = family.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matches.reduce((sum, s) => sum + s.value, 0);
}
