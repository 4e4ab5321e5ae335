"""`GET /`: what a browser (or a curious operator) finds at the controller's address.

Static and open: it names the pages and documents the API, and holds nothing secret.
"""

from __future__ import annotations

from ivrpowers.store.cdrs import MAX_LIMIT, MIN_PREFIX

INDEX_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ivrpowers</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}}
code{{background:#f2f2f2;padding:0 .2em}}td{{padding:.2em .8em .2em 0;vertical-align:top}}</style></head>
<body>
<h1>ivrpowers</h1>
<p>The controller of this contact center. Its pages and API:</p>
<table>
<tr><td><a href="/health"><code>GET /health</code></a></td><td>open: <code>ok</code> (200) or
<code>degraded</code> (503) with the problems, and counters (ARI, live calls, CDR backlog).</td></tr>
<tr><td><code>GET /api/calls?limit=N</code></td><td>the latest calls, newest first, with their timelines;
<code>N</code> from 1 to {MAX_LIMIT} (default 20). Same records as <code>ivrpowers cdr list --json</code>.</td></tr>
<tr><td><code>GET /api/calls/ID</code></td><td>one call: its id, or the start of it ({MIN_PREFIX} characters
or more), as <code>ivrpowers cdr show</code> takes it.</td></tr>
</table>
<h2>Authentication</h2>
<p>Everything under <code>/api/</code> needs <code>Authorization: Bearer TOKEN</code>, where TOKEN is
<code>api_token</code> in <code>secrets.json</code> of the installation's state directory (readable by its
owner only). For example:</p>
<pre>curl -H "Authorization: Bearer $(jq -r .api_token ~/.local/state/ivrpowers/secrets.json)" \\
     http://127.0.0.1:8080/api/calls?limit=5</pre>
<h2>Errors</h2>
<p>JSON <code>{{"error": "what was wrong"}}</code>: 400 a bad parameter (a limit out of range, an id start
shorter than {MIN_PREFIX}), 401 no or a wrong token, 404 no such call, 409 an id start shared by several
calls (with <code>"candidates"</code>).</p>
</body></html>
"""
