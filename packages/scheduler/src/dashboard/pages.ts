/**
 * The dashboard's two HTML pages: the app shell (static; the script fills it
 * in) and the login form. No inline script or style (the pages are served
 * with a strict Content-Security-Policy); the only dynamic text, the login
 * error, is escaped.
 * @module
 */

/**
 * HTML-escapes text for element content and quoted attribute values.
 * @example
 * escapeHtml('<script>'); // '&lt;script&gt;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

const head = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/dashboard/assets/app.css">
<link rel="icon" href="data:,">
</head>`;

/** The app shell. */
export function appPage(): string {
  return `${head('Dispatch dashboard')}
<body>
<header class="top">
  <a class="brand" href="#/runs">Dispatch</a>
  <nav>
    <a href="#/runs" data-nav="runs">Runs</a>
    <a href="#/concurrency" data-nav="concurrency">Concurrency</a>
    <a href="#/schedules" data-nav="schedules">Schedules</a>
  </nav>
  <span class="live" id="live" title="Updates stream from the scheduler">connecting…</span>
  <form method="post" action="/dashboard/logout" class="logout"><button type="submit" class="link">Sign out</button></form>
</header>
<div id="notice" class="notice" role="alert" hidden></div>
<main id="app"><p class="muted">Loading…</p></main>
<dialog id="confirm">
  <form method="dialog">
    <h2 id="confirm-title"></h2>
    <p id="confirm-text"></p>
    <div class="actions">
      <button value="no" type="submit">Keep it</button>
      <button value="yes" type="submit" class="danger" id="confirm-yes"></button>
    </div>
  </form>
</dialog>
<script src="/dashboard/assets/app.js" defer></script>
</body>
</html>
`;
}

/**
 * The login form, with an error message (escaped) when there is one.
 * @example
 * loginPage('That is not an API key of this scheduler.');
 */
export function loginPage(error: string): string {
  return `${head('Sign in · Dispatch dashboard')}
<body class="login-body">
<form class="login" method="post" action="/dashboard/login">
  <h1>Dispatch</h1>
  <p class="muted">Sign in with an API key of this scheduler (<code>DISPATCH_API_KEY</code>), or open the one-time link that <code>dispatch run</code> and <code>dispatch serve</code> print.</p>
  ${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
  <label for="key">API key</label>
  <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">Sign in</button>
</form>
</body>
</html>
`;
}
