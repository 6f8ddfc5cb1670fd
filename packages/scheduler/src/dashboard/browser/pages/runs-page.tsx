/**
 * The runs list: counts per state (chips that filter), filters by function,
 * creation time and depth, and the runs, newest first, 50 at a time.
 * @module
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { RunState, RunSummary, RunsResponse } from '../../api-types.js';
import { getRuns } from '../api/dashboard-api.js';
import { messageOf } from '../api/client.js';
import { Badge } from '../components/badge.js';
import { formatDuration, formatTime, shortId } from '../format.js';
import { showNotice } from '../shell.js';
import { useLiveRefresh } from '../state/live.js';
import { runHref } from '../state/route.js';
import { filterFromQuery, filterToApiQuery, filterToHash, type RunsFilter, TIME_CHOICES, toggleState } from '../state/runs-filter.js';

/** The states, in the order of their chips. */
const STATES: readonly RunState[] = ['pending', 'running', 'suspended', 'succeeded', 'failed', 'cancelled'];
/** Typing in the function field waits this long for a pause before filtering. */
const TYPING_PAUSE_MS = 300;
const COLUMNS = ['Function', 'State', 'Status', 'Attempts', 'Resumes', 'Created', 'Duration', 'Last error', 'Dispatch ID'];

function StateChips({ counts, states, onSelect }: { counts: RunsResponse['counts']; states: string[]; onSelect: (states: string[]) => void }) {
  const total = STATES.reduce((sum, st) => sum + (counts[st] || 0), 0);
  return (
    <div class="chips" data-testid="state-chips">
      <button type="button" class={`chip${states.length === 0 ? ' on' : ''}`} data-state="all" onClick={() => onSelect([])}>
        all<span class="n">{total}</span>
      </button>
      {STATES.map((st) => (
        <button
          type="button"
          key={st}
          class={`chip${states.includes(st) ? ' on' : ''}`}
          data-state={st}
          onClick={(ev) => onSelect(toggleState(states, st, ev.shiftKey || ev.ctrlKey || ev.metaKey))}
        >
          {st}
          <span class="n">{counts[st] || 0}</span>
        </button>
      ))}
    </div>
  );
}

function RunRow({ run: r }: { run: RunSummary }) {
  const end = r.finishedAt || Date.now();
  return (
    <tr
      class="click"
      data-id={r.id}
      onClick={() => {
        location.hash = runHref(r.id);
      }}
    >
      <td>
        <a href={runHref(r.id)}>{r.function}</a>
      </td>
      <td>
        <Badge text={r.state} />
      </td>
      <td class="mono">{r.statusName === 'UNSPECIFIED' ? '—' : r.statusName}</td>
      <td>{r.attempts}</td>
      <td>{r.resumes}</td>
      <td>{formatTime(r.createdAt)}</td>
      <td>{formatDuration(end - r.createdAt) + (r.finishedAt ? '' : ' …')}</td>
      <td class="err" title={r.error || ''}>
        {r.error || ''}
      </td>
      <td class="mono" title={r.id}>
        {shortId(r.id)}
      </td>
    </tr>
  );
}

/**
 * The runs page, with the filters of its hash's query.
 * @example
 * <RunsPage query={new URLSearchParams('state=failed')} />
 */
export function RunsPage({ query }: { query: URLSearchParams }) {
  const [filter, setFilter] = useState<RunsFilter>(() => filterFromQuery(query));
  const [fnText, setFnText] = useState(filter.fn);
  const [page, setPage] = useState<RunsResponse | null>(null);
  const [more, setMore] = useState<RunSummary[]>([]); // the further pages loaded
  const [cursor, setCursor] = useState<string | null>(null);
  const moreCount = useRef(0);
  const latestRequest = useRef(0);
  const typing = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const filtered = useRef(false);

  const refresh = useCallback(async () => {
    const request = ++latestRequest.current;
    try {
      const data = await getRuns(filterToApiQuery(filter, Date.now(), null));
      if (request !== latestRequest.current) return; // a newer request answers for another filter
      setPage(data);
      if (moreCount.current === 0) setCursor(data.nextCursor);
    } catch (err) {
      showNotice(messageOf(err));
    }
  }, [filter]);

  useEffect(() => {
    if (filtered.current) {
      // A new filter: back to the first page, and into the hash (without a new history entry).
      moreCount.current = 0;
      setMore([]);
      const hash = filterToHash(filter);
      if (location.hash !== hash) history.replaceState(null, '', hash);
    }
    filtered.current = true;
    void refresh();
  }, [filter]);
  useEffect(() => () => clearTimeout(typing.current), []);
  useLiveRefresh(refresh);

  const change = (patch: Partial<RunsFilter>) => setFilter((f) => ({ ...f, ...patch }));
  const loadMore = async () => {
    try {
      const data = await getRuns(filterToApiQuery(filter, Date.now(), cursor));
      moreCount.current += data.runs.length;
      setMore((m) => [...m, ...data.runs]);
      setCursor(data.nextCursor);
    } catch (err) {
      showNotice(messageOf(err));
    }
  };

  const rows = page ? [...page.runs, ...more] : [];
  return (
    <>
      <div class="panel">
        {page ? <StateChips counts={page.counts} states={filter.states} onSelect={(states) => change({ states })} /> : <div class="chips" data-testid="state-chips" />}
        <div class="filters">
          <label>
            Function
            <input
              type="search"
              placeholder="function name"
              list="functions"
              aria-label="Function"
              value={fnText}
              onInput={(ev) => {
                const text = ev.currentTarget.value;
                setFnText(text);
                clearTimeout(typing.current);
                typing.current = setTimeout(() => {
                  const fn = text.trim();
                  setFilter((f) => (f.fn === fn ? f : { ...f, fn }));
                }, TYPING_PAUSE_MS);
              }}
            />
          </label>
          <datalist id="functions">
            {page?.functions.map((fn) => (
              <option key={fn} value={fn} />
            ))}
          </datalist>
          <label>
            Created
            <select aria-label="Created" value={filter.time} onChange={(ev) => change({ time: ev.currentTarget.value })}>
              {TIME_CHOICES.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <span class="filters" hidden={filter.time !== 'custom'}>
            <input type="datetime-local" aria-label="From" value={filter.from} onChange={(ev) => change({ from: ev.currentTarget.value })} />
            →
            <input type="datetime-local" aria-label="To" value={filter.to} onChange={(ev) => change({ to: ev.currentTarget.value })} />
          </span>
          <label>
            <input type="checkbox" checked={filter.roots} onChange={(ev) => change({ roots: ev.currentTarget.checked })} />
            top-level runs only
          </label>
          <span class="muted">{page ? `${rows.length} shown` : ''}</span>
        </div>
      </div>
      <div class="panel">
        <table class="runs">
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th key={c}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <RunRow key={`${i}:${r.id}`} run={r} />
            ))}
            {page && rows.length === 0 ? (
              <tr>
                <td colSpan={8} class="muted">
                  No runs match these filters.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
        <div class="more">
          {cursor ? (
            <button type="button" onClick={() => void loadMore()}>
              Load more
            </button>
          ) : null}
        </div>
      </div>
    </>
  );
}
