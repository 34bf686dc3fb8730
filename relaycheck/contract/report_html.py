"""The gate's HTML page: one self-contained file (no network), verdict and counts first, defects by
severity with their reproductions and every occurrence, filters, deviations, notes, coverage."""

from __future__ import annotations

import base64
import html
from typing import Any
from urllib.parse import urlsplit

from relaycheck.contract.coverage import coverage_line
from relaycheck.contract.defects import SEVERITIES, SEVERITY_TEXT

#: Bytes of a response body shown inline (summary.json keeps at most this much per finding anyway).
BODY_SHOWN = 512

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1500px}
h1{margin:.2em 0}h1.pass{color:#070}h1.fail{color:#b00}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.counts{font-size:1.15em}.counts b{font-size:1.3em}.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;
vertical-align:top}td.l,th.l{text-align:left}.ok{background:#dfd}.miss{background:#fdd}.bad{background:#f99}
.defect{border:1px solid #ccc;border-left:6px solid #999;border-radius:4px;padding:.4em .8em;margin:.7em 0}
.defect.crash{border-left-color:#c00}.defect.contract{border-left-color:#e80}.defect.shape{border-left-color:#36c}
.sev{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-size:.85em;font-weight:600}
.sev.crash{background:#c00}.sev.contract{background:#d70}.sev.shape{background:#36c}
.id{font-family:monospace;font-weight:600}.rule{font-weight:600}.where{color:#555}
pre{white-space:pre-wrap;word-break:break-all;background:#f5f5f5;padding:.4em .6em;margin:.3em 0}
pre.curl{background:#eef6ee;border:1px solid #cdc}.filters{background:#f3f3f8;padding:.5em .8em;border-radius:4px}
.filters select{margin-right:1em;max-width:22em}.hidden{display:none}.occ td{font-size:.9em}
table.occ{width:100%;table-layout:fixed}.occ td{overflow-wrap:anywhere}.occ .c-op{width:24%}.occ .c-req{width:36%}
.occ .c-st{width:4em}p code{overflow-wrap:anywhere}
"""

# The count of shown defects is computed here, so a self-test reading it proves the page was rendered.
_JS = """
function applyFilters(){
  var sev=document.getElementById('f-severity').value, chk=document.getElementById('f-check').value,
      op=document.getElementById('f-operation').value, shown=0, occ=0;
  document.querySelectorAll('#defects .defect').forEach(function(d){
    var ok=(!sev||d.dataset.severity===sev)&&(!chk||d.dataset.check===chk)&&
           (!op||d.dataset.operations.split('\\n').indexOf(op)>=0);
    d.classList.toggle('hidden',!ok);
    if(ok){shown++;occ+=parseInt(d.dataset.count,10);}
  });
  document.getElementById('shown').textContent=String(shown);
  document.getElementById('shown-occurrences').textContent=String(occ);
}
document.addEventListener('DOMContentLoaded',function(){
  ['f-severity','f-check','f-operation'].forEach(function(id){
    document.getElementById(id).addEventListener('change',applyFilters);});
  applyFilters();
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _options(values: list[str]) -> str:
    return "".join(f"<option value='{_e(v)}'>{_e(v)}</option>" for v in values)


def _exchange_html(finding: dict[str, Any]) -> str:
    exchange = finding.get("exchange")
    if not exchange:
        return ""
    body = base64.b64decode(exchange["response_body_b64"]) if exchange.get("response_body_b64") else b""
    length = exchange.get("response_body_length") or len(body)
    cut = (f" (first {len(body)} of {length} bytes, sha256 {exchange['response_body_sha256']})"
           if exchange.get("response_body_sha256") else "")
    status = exchange.get("status") if exchange.get("status") is not None else exchange.get("error")
    content_type = next((v for k, v in exchange["response_headers"].items() if k.lower() == "content-type"), "")
    shown = body[:BODY_SHOWN].decode("utf-8", "replace")
    return (f"<p>recorded exchange: <code>{_e(exchange['method'])} {_e(exchange['url'])}</code> → "
            f"<b>{_e(status)}</b> <code>{_e(content_type)}</code>{_e(cut)}</p>"
            f"<pre>{_e(shown) if shown else '(empty body)'}</pre>")


def _request_line(finding: dict[str, Any]) -> str:
    exchange = finding.get("exchange")
    if exchange:
        # The host is the run's own target, the same on every row: the path and query tell rows apart.
        parts = urlsplit(exchange["url"])
        return f"{exchange['method']} {parts.path}{'?' + parts.query if parts.query else ''}"
    request = finding.get("request")
    return f"{request['method']} {request['path']}" if request else ""


def _defect_html(defect: dict[str, Any], findings: dict[str, dict[str, Any]]) -> str:
    rep = defect["reproduce"]
    shown = findings.get(rep["finding"], {})
    occurrences = "".join(
        f"<tr><td class='l'><code>{_e(f['operation'])}</code></td>"
        f"<td class='l'><code>{_e(_request_line(f))}</code></td>"
        f"<td>{_e((f.get('exchange') or {}).get('status') or '-')}</td>"
        f"<td class='l'>{_e(_clip(f['message'].splitlines()[0] if f['message'] else '', 240))}</td></tr>"
        for f in (findings[i] for i in defect["occurrences"] if i in findings)
    )
    status = ("known deviation: " + _e(defect["deviation"]["reason"])) if defect["deviation"] else (
        "baselined" if defect["baselined"] else "")
    reproduction = (
        f"<p>smallest reproduction ({_e(shown.get('operation', ''))}):</p><pre class='curl'>{_e(rep['curl'])}</pre>"
        f"<p>replay: <code>{_e(rep['replay'])}</code><br>regression test: <code>{_e(rep['regression_test'])}</code>"
        f"<br>seed: {_e(rep['seed'])}</p>{_exchange_html(shown)}"
        if rep["curl"] else "<p class='bad'>no request recorded: this is a defect of relaycheck</p>"
    )
    cause = defect["cause"]
    body = f" · body <code>{_e(cause['body_shape'])}</code>" if cause["body_shape"] else ""
    said = f" · {_e(cause['detail'])}" if cause["detail"] else ""
    operations = defect["operations"]
    many = "s" if len(operations) != 1 else ""
    related = (f"<p class='where'>the same requests also break: "
               f"{', '.join(f'<span class=id>{_e(i)}</span>' for i in defect.get('related') or [])}</p>"
               if defect.get("related") else "")
    return (
        f"<section class='defect {_e(defect['severity'])}' data-severity='{_e(defect['severity'])}' "
        f"data-check='{_e(defect['check'])}' data-count='{defect['count']}' "
        f"data-operations='{_e(chr(10).join(operations))}'>"
        f"<div><span class='id'>{_e(defect['id'])}</span> <span class='sev {_e(defect['severity'])}'>"
        f"{_e(defect['severity_text'])}</span> [{_e(defect['check'])}] <span class='rule'>{_e(defect['rule'])}</span>"
        f"{' · ' + status if status else ''}</div>"
        f"<div class='where'>{defect['count']} occurrence{'s' if defect['count'] != 1 else ''} on "
        f"{len(operations)} operation{many}: {_e(', '.join(operations[:6]))}{' …' if len(operations) > 6 else ''}"
        f"</div><p>cause: answered <b>{_e(cause['status'])}</b> {_e(cause['media_type'])}{body}{said}</p>"
        f"{related}"
        f"{reproduction}"
        f"<details><summary>every occurrence ({defect['count']})</summary><table class='occ'><tr><th class='l c-op'>"
        f"operation</th><th class='l c-req'>request</th><th class='c-st'>status</th><th class='l'>message</th></tr>"
        f"{occurrences}"
        f"</table></details></section>"
    )


def _phase_columns(summary: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for o in summary["operations"]:
        for p in o["requests_by_phase"]:
            if p not in seen:
                seen.append(p)
    return seen


def html_report(summary: dict[str, Any]) -> str:
    counts = summary["counts"]
    findings = {f["id"]: f for f in summary["findings"]}
    failing = [d for d in summary["defects"] if d["fails_gate"]]
    accepted = [d for d in summary["defects"] if not d["fails_gate"] and not d["note"]]
    notes = [d for d in summary["defects"] if d["note"]]
    phases = _phase_columns(summary)
    rows = "".join(
        f"<tr><td class='l'><code>{_e(o['operation'])}</code></td><td>{o['requests']}</td>"
        + "".join(f"<td>{o['requests_by_phase'].get(p, 0)}</td>" for p in phases)
        + f"<td class='{'ok' if o['2xx'] else 'miss'}'>{o['2xx']}</td><td class='{'ok' if o['4xx'] else 'miss'}'>"
        f"{o['4xx']}</td><td class='{'bad' if o['5xx'] else ''}'>{o['5xx']}</td></tr>"
        for o in summary["operations"]
    )
    by_severity = " · ".join(f"{n} {_e(SEVERITY_TEXT[s])}" for s, n in counts["defects_by_severity"].items() if n)
    note_rows = "".join(
        f"<li><span class='id'>{_e(d['id'])}</span> {_e(d['rule'])} <span class='where'>"
        f"({_e(', '.join(d['operations']))})</span></li>" for d in notes
    )
    stale = "".join(
        f"<li>{_e(d.get('defect') or '')} <code>{_e(d['operation'])}</code> [{_e(d['check'])}] {_e(d['reason'])}</li>"
        for d in summary["stale_deviations"]
    )
    run_notes = "".join(f"<li>{_e(n if isinstance(n, str) else n.get('message', n))}</li>"
                        for n in summary.get("notes") or [])
    operations = sorted({o for d in failing for o in d["operations"]})
    checks = sorted({d["check"] for d in failing})
    verdict = summary["verdict"]
    phase_heads = "".join(f"<th>{_e(p)}</th>" for p in phases)
    stop_reason = _e(" — " + summary["reason"]) if summary.get("reason") else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>relaycheck contract: {_e(verdict)}</title>
<style>{_CSS}</style><script>{_JS}</script></head><body>
<h1 class="{_e(verdict)}">relaycheck contract — {_e(verdict.upper())}</h1>
<p class="counts"><b id="defect-count">{counts['failing_defects']}</b> failing defects
{f'({by_severity})' if by_severity else ''} from {counts['failing']} failing findings ·
{counts['operations_exercised']}/{counts['operations']} operations exercised · {counts['requests']} requests ·
{counts['known_deviations']} findings covered by known deviations · {counts['baselined']} baselined ·
{len(notes)} schema-document notes</p>
<p class="meta">target <code>{_e(summary['target'])}</code> · level {_e(summary['level'])} · seed {summary['seed']} ·
schema {_e(summary['schema']['origin'])} sha256 <code>{_e(summary['schema']['sha256'])}</code> ·
{summary['duration_s']:.1f} s · stop: {_e(summary['stop_reason'])}{stop_reason}</p>
<h2>Defects</h2>
<div class="filters">severity <select id="f-severity"><option value="">all</option>{_options(list(SEVERITIES))}
</select> check <select id="f-check"><option value="">all</option>{_options(checks)}</select>
operation <select id="f-operation"><option value="">all</option>{_options(operations)}</select>
<span id="shown">…</span> of {len(failing)} defects shown (<span id="shown-occurrences">…</span> occurrences)</div>
<div id="defects">{''.join(_defect_html(d, findings) for d in failing) or '<p>none</p>'}</div>
<h2>Known deviations and baselined defects</h2>
<div id="accepted">{''.join(_defect_html(d, findings) for d in accepted) or '<p>none</p>'}</div>
<h2>Stale deviations</h2><ul id="stale">{stale or '<li>none</li>'}</ul>
<h2>Schema-document notes</h2>
<p class="meta">Corrections the strict level applies, known from the Relay's code; no request shows them, so
they do not fail the gate.</p><ul id="notes">{note_rows or '<li>none</li>'}</ul>
<h2>Run notes</h2><p class="meta">What the run could not exercise and why (not findings).</p>
<ul id="run-notes">{run_notes or '<li>none</li>'}</ul>
<h2>Coverage</h2><p class="meta" id="coverage-line">{_e(_coverage_text(summary))}</p>
<table><tr><th class="l">operation</th><th>requests</th>{phase_heads}<th>2xx</th><th>4xx</th>
<th>5xx</th></tr>
{rows}</table>
</body></html>
"""


def _coverage_text(summary: dict[str, Any]) -> str:
    coverage = summary.get("coverage")
    return coverage_line(coverage, limit=20) if coverage else ""
