/**
 * Counters and histograms for the run loop's hot path: each series (one set
 * of label values) is found once by a key the caller builds, then updated
 * with a few additions. prom-client's own `inc` and `observe` hash and
 * validate their labels object on every call (~0.35 µs each, measured; an
 * awaited step makes about eight of them). These register in a prom-client
 * `Registry` as any metric does and serve the same samples (`_bucket` with
 * `le`, `_sum`, `_count` for a histogram).
 * @module
 */
import type { Registry } from 'prom-client';

/** One exported sample, as prom-client's registry formats it. */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** What prom-client's registry reads of a metric at scrape time. */
interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Sample[];
  aggregator: 'sum';
}

/** The series of one metric, by the caller's key of their label values. */
abstract class SeriesMetric<S extends { labels: Record<string, string> }> {
  readonly aggregator = 'sum';
  /** Every series, in the order made (what a scrape reads). */
  readonly #series: S[] = [];
  /**
   * The series by their label values, one map per label: a lookup reads
   * one map per value, with no key string made and hashed per update.
   */
  readonly #byValues = new Map<string, unknown>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    // The registry takes any object that answers get() (and reset()) as prom-client's metrics do.
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /**
   * The series of `values` (one per label name, in order), made on first
   * use; callers keep it, or look it up by a key of their own.
   */
  series(...values: string[]): S {
    const last = values.length - 1;
    if (last !== this.labelNames.length - 1) {
      throw new Error(`${this.name} has labels ${this.labelNames.join(', ')}: got ${values.length} values (${values.join(', ')})`);
    }
    let node = this.#byValues;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i]!) as Map<string, unknown> | undefined;
      if (!next) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    let s = node.get(values[last]!) as S | undefined;
    if (!s) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i]!;
      });
      s = this.make(labels);
      node.set(values[last]!, s);
      this.#series.push(s);
    }
    return s;
  }

  /** Every series made so far. */
  protected all(): IterableIterator<S> {
    return this.#series.values();
  }

  protected abstract make(labels: Record<string, string>): S;
  protected abstract samples(): Sample[];
  /** Zeroes a series in place (callers may keep it). */
  protected abstract zero(s: S): void;

  /** For the registry: the samples of every series. */
  async get(): Promise<MetricData> {
    return { name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: this.aggregator };
  }

  /** For the registry (`resetMetrics`): every series back to zero. */
  reset(): void {
    for (const s of this.#series.values()) this.zero(s);
  }

  abstract readonly type: 'counter' | 'histogram';
}

/** A counter's series. */
export interface CounterSeries {
  readonly labels: Record<string, string>;
  value: number;
}

/**
 * A Prometheus counter of series looked up once.
 * @example
 * const finished = new SeriesCounter(registry, 'dispatch_calls_finished_total', 'Calls finished', ['function', 'state']);
 * finished.series('checkout', 'succeeded').value++;
 */
export class SeriesCounter extends SeriesMetric<CounterSeries> {
  readonly type = 'counter';

  protected make(labels: Record<string, string>): CounterSeries {
    return { labels, value: 0 };
  }

  protected zero(s: CounterSeries): void {
    s.value = 0;
  }

  protected samples(): Sample[] {
    return [...this.all()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}

/**
 * A histogram's series: counts per bucket (not cumulative), their sum and
 * count. {@link HistogramSeries.observe} adds one value.
 */
export class HistogramSeries {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }

  /** One observation: in the first bucket whose upper bound is at least `value` (none above the last). */
  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

/**
 * A Prometheus histogram of series looked up once.
 * @example
 * const runs = new SeriesHistogram(registry, 'dispatch_attempt_duration_seconds', 'Duration of one run', ['function'], [0.01, 0.1, 1]);
 * runs.series('checkout').observe(0.042);
 */
export class SeriesHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram';
  readonly #bounds: readonly number[];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    super(registry, name, help, labelNames);
    this.#bounds = [...bounds].sort((a, b) => a - b);
  }

  protected make(labels: Record<string, string>): HistogramSeries {
    return new HistogramSeries(labels, this.#bounds);
  }

  protected zero(s: HistogramSeries): void {
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }

  protected samples(): Sample[] {
    const out: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.all()) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out.push({ labels: { ...s.labels, le }, value: cumulative, metricName: bucket });
      });
      out.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucket });
      out.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      out.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return out;
  }
}
