/**
 * The dashboard's stylesheet (served as `/dashboard/assets/app.css`).
 * @module
 */

/** The stylesheet. */
export const DASHBOARD_CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #667085; --line: #e3e6eb;
  --accent: #3b5bdb; --ok: #2b8a3e; --fail: #c92a2a; --warn: #d9480f; --wait: #1971c2; --idle: #868e96;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  color-scheme: light;
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; background: var(--bg); color: var(--text); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: var(--mono); font-size: 12.5px; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; background: #f1f3f5; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; max-height: 360px; overflow: auto; }
h1 { font-size: 20px; margin: 0 0 12px; }
h2 { font-size: 15px; margin: 0 0 10px; }
h3 { font-size: 13px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
button { font: inherit; border: 1px solid var(--line); background: var(--panel); color: var(--text); border-radius: 6px; padding: 5px 12px; cursor: pointer; }
button:hover { border-color: #c5cad3; }
button.danger { background: var(--fail); border-color: var(--fail); color: #fff; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.link { border: 0; background: none; color: var(--muted); padding: 0; }
button:disabled { opacity: .5; cursor: default; }
input, select { font: inherit; border: 1px solid var(--line); border-radius: 6px; padding: 5px 8px; background: var(--panel); color: var(--text); }
.muted { color: var(--muted); }
.top { display: flex; align-items: center; gap: 20px; padding: 10px 20px; background: #1d2330; color: #fff; }
.top .brand { color: #fff; font-weight: 700; font-size: 16px; }
.top nav { display: flex; gap: 14px; }
.top nav a { color: #c9ced8; padding: 4px 2px; }
.top nav a.active { color: #fff; border-bottom: 2px solid #7c93ff; }
.top .live { margin-left: auto; font-size: 12px; color: #c9ced8; }
.top .live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--idle); margin-right: 6px; }
.top .live.on::before { background: #51cf66; }
.top .logout button { color: #c9ced8; }
main { padding: 18px 20px 40px; max-width: 1400px; margin: 0 auto; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 14px; }
.notice { margin: 10px 20px 0; padding: 8px 12px; border-radius: 6px; background: #fff5f5; border: 1px solid #ffc9c9; color: var(--fail); }
.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
.filters label { color: var(--muted); font-size: 12px; display: flex; gap: 6px; align-items: center; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 10px; }
.chip { border-radius: 999px; padding: 3px 10px; font-size: 12.5px; }
.chip .n { font-weight: 600; margin-left: 4px; }
.chip.on { background: var(--accent); border-color: var(--accent); color: #fff; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
tbody tr.click { cursor: pointer; }
tbody tr.click:hover { background: #f8f9fb; }
td.nowrap { white-space: nowrap; }
td.err { color: var(--fail); max-width: 420px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #e9ecef; color: #495057; white-space: nowrap; }
.badge.succeeded, .badge.done { background: #d3f9d8; color: var(--ok); }
.badge.failed { background: #ffe3e3; color: var(--fail); }
.badge.cancelled { background: #e9ecef; color: #495057; }
.badge.running { background: #fff3bf; color: #8f5b00; }
.badge.pending { background: #fff4e6; color: var(--warn); }
.badge.suspended, .badge.waiting { background: #d0ebff; color: var(--wait); }
.badge.retry { background: #fff4e6; color: var(--warn); }
.badge.exit-ok { background: #d3f9d8; color: var(--ok); }
.badge.exit-fail { background: #ffe3e3; color: var(--fail); }
.badge.suspend { background: #d0ebff; color: var(--wait); }
.run-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.run-head h1 { margin: 0; }
.run-head .actions { margin-left: auto; display: flex; gap: 8px; }
.grid { display: grid; grid-template-columns: minmax(300px, 380px) 1fr; gap: 14px; align-items: start; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.tree, .tree ul { list-style: none; margin: 0; padding: 0; }
.tree ul { margin-left: 14px; border-left: 1px dashed #ced4da; padding-left: 10px; }
.tree li { margin: 3px 0; }
.tree .node { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; padding: 3px 6px; border-radius: 6px; }
.tree .node.sel { background: #edf2ff; outline: 1px solid #bac8ff; }
.tree .node .fn { font-weight: 600; }
.tree .node .meta { color: var(--muted); font-size: 12px; white-space: nowrap; }
.panel > h2:not(:first-child) { margin-top: 16px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; word-break: break-all; }
.timeline { position: relative; height: 28px; background: #f1f3f5; border-radius: 6px; margin: 6px 0 10px; overflow: hidden; }
.timeline .bar { position: absolute; top: 5px; height: 18px; min-width: 4px; border-radius: 3px; color: #fff; font-size: 11px; line-height: 18px; padding: 0 4px; overflow: hidden; white-space: nowrap; }
.timeline .bar.ok { background: var(--ok); } .timeline .bar.fail { background: var(--fail); }
.timeline .bar.retry { background: var(--warn); } .timeline .bar.suspend { background: var(--wait); }
.error-box { border-left: 3px solid var(--fail); padding: 4px 10px; margin: 4px 0; background: #fff8f8; }
.error-box .name { font-weight: 700; color: var(--fail); }
details summary { cursor: pointer; color: var(--muted); font-size: 12.5px; }
.note { color: var(--muted); font-style: italic; font-size: 12.5px; margin: 4px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 14px; }
.card .head { display: flex; justify-content: space-between; gap: 10px; align-items: baseline; }
.card .fn { font-weight: 700; }
.card .ep { color: var(--muted); font-size: 12px; word-break: break-all; }
.card .nums { display: flex; gap: 18px; margin: 8px 0; }
.card .nums b { font-size: 20px; display: block; }
.card .nums span { color: var(--muted); font-size: 12px; }
svg.chart { width: 100%; height: 120px; display: block; }
svg.chart .limit { fill: none; stroke: var(--accent); stroke-width: 2; }
svg.chart .inflight { fill: rgba(43, 138, 62, .25); stroke: var(--ok); stroke-width: 1; }
svg.chart .axis { stroke: var(--line); }
svg.chart text { fill: var(--muted); font-size: 10px; font-family: system-ui, sans-serif; }
.legend { font-size: 12px; color: var(--muted); display: flex; gap: 14px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
.more { margin-top: 10px; text-align: center; }
dialog { border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; max-width: 480px; box-shadow: 0 10px 30px rgba(0,0,0,.2); }
dialog::backdrop { background: rgba(20, 24, 33, .45); }
dialog .actions { display: flex; justify-content: flex-end; gap: 8px; margin-top: 14px; }
.login-body { display: flex; min-height: 100vh; align-items: center; justify-content: center; }
form.login { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 24px 28px; width: 380px; display: flex; flex-direction: column; gap: 10px; }
form.login .error { color: var(--fail); background: #fff5f5; border: 1px solid #ffc9c9; padding: 6px 10px; border-radius: 6px; margin: 0; }
form.login button { background: var(--accent); color: #fff; border-color: var(--accent); padding: 7px; }
`;
