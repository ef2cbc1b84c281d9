# ruff: noqa: E501 - an HTML document with its CSS and script; its lines are as long as they read best
"""The board's page: one HTML document with its CSS and script inline, so it works with no internet.

Chinese labels by default, English on the switch (remembered by the browser, or ``?lang=en``). It polls
``/board.json`` every second and redraws; it computes nothing about deadlines itself (streams.board does).
Sizes follow the viewport, so the same page reads on a wall screen and on a laptop.
"""

PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>指挥室实时看板 · alarmflow</title>
<style>
:root { --bg:#10151c; --panel:#19212b; --line:#2a3542; --text:#e8eef5; --dim:#93a1b1;
        --ok:#2e9e5b; --risk:#e0a106; --over:#d63c3c; --met:#4d6072; }
* { box-sizing: border-box; }
html { font-size: clamp(13px, 0.95vw, 30px); }
body { margin:0; background:var(--bg); color:var(--text);
       font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei", sans-serif; }
header { display:flex; align-items:center; gap:1.2rem; padding:.6rem 1rem; border-bottom:1px solid var(--line); flex-wrap:wrap; }
h1 { font-size:1.5rem; margin:0; font-weight:600; }
.chip { padding:.25rem .7rem; border-radius:1rem; background:var(--panel); font-size:1.05rem; white-space:nowrap; }
.chip b { font-size:1.3rem; margin-left:.3rem; }
.chip.risk b { color:var(--risk); } .chip.over b { color:var(--over); } .chip.ok b { color:var(--ok); }
#clock { margin-left:auto; font-variant-numeric:tabular-nums; font-size:1.3rem; }
#stale { color:var(--over); font-weight:700; }
button { background:var(--panel); color:var(--text); border:1px solid var(--line); border-radius:.4rem;
         padding:.3rem .8rem; font-size:1rem; cursor:pointer; }
main { display:grid; grid-template-columns: minmax(0, 2.2fr) minmax(0, 1fr); gap:.8rem; padding:.8rem; }
@media (max-width: 1100px) { main { grid-template-columns: 1fr; } }
section { background:var(--panel); border-radius:.5rem; padding:.6rem .8rem; overflow:hidden; }
section h2 { font-size:1.1rem; margin:.1rem 0 .5rem; color:var(--dim); font-weight:600; }
aside { display:flex; flex-direction:column; gap:.8rem; min-width:0; }
table { width:100%; border-collapse:collapse; font-size:1rem; }
th { text-align:left; color:var(--dim); font-weight:500; padding:.25rem .35rem; border-bottom:1px solid var(--line); }
td { padding:.3rem .35rem; border-bottom:1px solid var(--line); white-space:nowrap; }
tr.case td:first-child { border-left:.35rem solid var(--ok); }
tr.case[data-status="at_risk"] td:first-child { border-left-color:var(--risk); }
tr.case[data-status="overdue"] td:first-child { border-left-color:var(--over); }
td.stage { font-variant-numeric:tabular-nums; font-weight:600; text-align:center; border-radius:.3rem; }
td.stage[data-status="ok"] { background:rgba(46,158,91,.25); color:#9fe3b8; }
td.stage[data-status="at_risk"] { background:var(--risk); color:#1b1400; }
td.stage[data-status="overdue"], td.stage[data-status="breached"] { background:var(--over); color:#fff; }
td.stage[data-status="met"] { color:var(--dim); font-weight:400; }
td.stage[data-status="late"] { color:#f0a0a0; font-weight:400; }
.bar { height:.7rem; background:var(--line); border-radius:.35rem; overflow:hidden; }
.bar > div { height:100%; background:var(--ok); }
.kv { display:grid; grid-template-columns:auto 1fr auto; gap:.3rem .6rem; align-items:center; }
.dim { color:var(--dim); } .num { font-variant-numeric:tabular-nums; text-align:right; }
.empty { color:var(--dim); padding:.4rem 0; }
.scroll { max-height:22rem; overflow:auto; }
</style>
</head>
<body>
<header>
  <h1 data-i18n="title">指挥室实时看板</h1>
  <span class="chip"><span data-i18n="open">在办警情</span><b id="n-open">–</b></span>
  <span class="chip ok"><span data-i18n="ok">正常</span><b id="n-ok">–</b></span>
  <span class="chip risk"><span data-i18n="at_risk">临期</span><b id="n-risk">–</b></span>
  <span class="chip over"><span data-i18n="overdue">超时</span><b id="n-over">–</b></span>
  <span class="chip"><span data-i18n="deadletters">死信</span><b id="n-dl">–</b></span>
  <span class="chip"><span data-i18n="lag">积压</span><b id="n-lag">–</b></span>
  <span id="stale"></span>
  <span id="clock">–</span>
  <button id="lang" type="button">English</button>
</header>
<main>
  <section>
    <h2 data-i18n="cases">在办警情（按紧急程度）</h2>
    <table id="cases">
      <thead><tr><th data-i18n="case">警情</th><th data-i18n="category">类别</th><th data-i18n="force">处置力量</th>
        <th data-i18n="grid">网格</th><th data-i18n="assignee">责任人</th><th data-i18n="accept">接单</th>
        <th data-i18n="contact">联系</th><th data-i18n="arrive">到场</th></tr></thead>
      <tbody></tbody>
    </table>
    <div id="cases-empty" class="empty" data-i18n="none_open">暂无在办警情</div>
  </section>
  <aside>
    <section><h2 data-i18n="compliance">今日时限达标率</h2><div id="compliance" class="kv"></div></section>
    <section><h2><span data-i18n="breaches">今日超时</span> <span id="breach-counts" class="dim"></span></h2>
      <div class="scroll"><table id="breaches"><tbody></tbody></table></div></section>
    <section><h2 data-i18n="escalations">升级与改派</h2><div class="scroll"><table id="escalations"><tbody></tbody></table></div></section>
    <section><h2 data-i18n="agenda">今日热点议程（联合会商）</h2><div class="scroll"><table id="agenda"><tbody></tbody></table></div></section>
    <section><h2 data-i18n="ops">死信与积压</h2><div id="ops"></div></section>
  </aside>
</main>
<script>
"use strict";
const T = {
  zh: { title:"指挥室实时看板", open:"在办警情", ok:"正常", at_risk:"临期", overdue:"超时", deadletters:"死信", lag:"积压",
        cases:"在办警情（按紧急程度）", case:"警情", category:"类别", force:"处置力量", grid:"网格", assignee:"责任人",
        accept:"接单", contact:"联系", arrive:"到场", none_open:"暂无在办警情", compliance:"今日时限达标率",
        breaches:"今日超时", escalations:"升级与改派", agenda:"今日热点议程（联合会商）", ops:"死信与积压",
        met:"已完成", late:"超时完成", breached:"已违约", none:"无", stale:"数据未更新", pending:"待处理",
        redrives:"重投", lag_total:"消费积压", lag_pending:"待处理记录", unassigned:"指挥室", lang:"English",
        within:"达标", open_n:"未决", NEW:"新增", ACTIVE:"持续", COOLED:"已降温", count:"次",
        POLICE_STATION:"派出所", ENFORCEMENT:"综合执法", GOVERNANCE:"基层治理", MEDIATION:"人民调解",
        GRID_WORKER:"网格员", VOLUNTEER:"志愿者" },
  en: { title:"Command room live board", open:"Open cases", ok:"On time", at_risk:"At risk", overdue:"Overdue",
        deadletters:"Dead letters", lag:"Lag", cases:"Open cases (most urgent first)", case:"Case", category:"Category",
        force:"Force", grid:"Grid", assignee:"Assignee", accept:"Accept", contact:"Contact", arrive:"Arrive",
        none_open:"No open cases", compliance:"Within target today", breaches:"Breaches today",
        escalations:"Escalations and reassignments", agenda:"Hotspot agenda of the day", ops:"Dead letters and lag",
        met:"met", late:"met late", breached:"breached", none:"none", stale:"data not updating", pending:"pending",
        redrives:"re-driven", lag_total:"consumer lag", lag_pending:"pending records", unassigned:"command room",
        lang:"中文", within:"within", open_n:"open", NEW:"new", ACTIVE:"active", COOLED:"cooled", count:"calls",
        POLICE_STATION:"Police station", ENFORCEMENT:"Enforcement", GOVERNANCE:"Governance", MEDIATION:"Mediation",
        GRID_WORKER:"Grid worker", VOLUNTEER:"Volunteer" } };
const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("board-lang") || "zh";
let last = null, lastOk = 0;
const t = k => (T[lang][k] !== undefined ? T[lang][k] : k);
const esc = s => String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g,
  c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"})[c]);
const hhmm = iso => iso ? new Date(iso).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB",
  {timeZone:"Asia/Shanghai", hour12:false}) : "";
function clock(s) {
  const neg = s < 0, a = Math.abs(s), h = Math.floor(a / 3600), m = Math.floor(a % 3600 / 60), x = a % 60;
  const body = (h ? h + ":" + String(m).padStart(2, "0") : String(m).padStart(2, "0")) + ":" + String(x).padStart(2, "0");
  return (neg ? "−" : "") + body;
}
function stageCell(s) {
  let text;
  if (s.status === "met" || s.status === "late") text = "✓ " + t(s.status);
  else if (s.status === "breached") text = t("breached") + " " + clock(s.remaining_s);
  else text = clock(s.remaining_s);
  return `<td class="stage" data-stage="${s.stage}" data-status="${s.status}">${esc(text)}</td>`;
}
function rows(id, html, empty) {
  document.querySelector(`#${id} tbody`).innerHTML = html || `<tr><td class="empty">${esc(empty)}</td></tr>`;
}
function render() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach(e => { e.textContent = t(e.dataset.i18n); });
  document.title = t("title") + " · alarmflow";
  document.getElementById("lang").textContent = t("lang");
  const d = last;
  if (!d) return;
  const c = d.counts || {};
  document.getElementById("n-open").textContent = (c.open ?? "–") + (c.capped ? "+" : "");
  document.getElementById("n-ok").textContent = c.ok ?? "–";
  document.getElementById("n-risk").textContent = c.at_risk ?? "–";
  document.getElementById("n-over").textContent = c.overdue ?? "–";
  document.getElementById("n-dl").textContent = d.deadletters ? d.deadletters.total : "–";
  document.getElementById("n-lag").textContent = d.lag ? (d.lag.error ? "?" : d.lag.pending) : "–";
  const cases = d.cases || [];
  document.querySelector("#cases tbody").innerHTML = cases.map(k =>
    `<tr class="case" data-case="${esc(k.case_id)}" data-status="${k.status}"><td>${esc(k.case_id)}</td>` +
    `<td title="${esc(k.category)}">${esc(lang === "zh" ? (d.category_names || {})[k.category] || k.category : k.category)}</td><td>${esc(t(k.force))}</td><td>${esc(k.grid)}</td>` +
    `<td>${esc(k.assignee || t("unassigned"))}${k.escalations ? " ↑" + k.escalations : ""}</td>` +
    k.stages.map(stageCell).join("") + "</tr>").join("");
  document.getElementById("cases-empty").style.display = cases.length ? "none" : "block";
  document.getElementById("compliance").innerHTML = (d.compliance || []).map(s => {
    const pct = s.within === null ? null : Math.round(s.within * 1000) / 10;
    return `<span>${esc(t(s.stage))}</span><div class="bar"><div style="width:${pct ?? 0}%"></div></div>` +
      `<span class="num">${pct === null ? "–" : pct + "%"} <span class="dim">${s.met}/${Number(s.met) + Number(s.breached)}` +
      ` · ${t("open_n")} ${s.open}</span></span>`;
  }).join("") || `<span class="empty">${esc(t("none"))}</span>`;
  const bs = d.breaches_by_stage || {};
  document.getElementById("breach-counts").textContent =
    ["accept", "contact", "arrive"].map(s => `${t(s)} ${bs[s] ?? 0}`).join(" · ");
  rows("breaches", (d.breaches || []).map(b => `<tr><td>${esc(b.case_id)}</td><td>${esc(t(String(b.stage).toLowerCase()))}</td>` +
    `<td class="dim">${hhmm(b.deadline)}</td><td>${esc(t(b.force))}</td><td>${esc(b.assignee)}</td></tr>`).join(""), t("none"));
  rows("escalations", (d.escalations || []).map(e => `<tr><td>${esc(e.case_id)}</td><td class="dim">${hhmm(e.at)}</td>` +
    `<td>${esc(e.level)}</td><td>${esc(e.from)} → ${esc(e.to || t("unassigned"))}</td></tr>`).join(""), t("none"));
  const ag = d.agenda || {columns: [], rows: []}, col = n => ag.columns.indexOf(n);
  rows("agenda", ag.rows.map(r => `<tr><td>${esc(t(r[col("status")]))}</td><td>${esc(r[col("place")])}</td>` +
    `<td>${esc(r[col("family")])}</td><td class="num">${esc(r[col("count")])} ${esc(t("count"))}</td>` +
    `<td>${esc(t(r[col("owning_force")]))}</td></tr>`).join(""), t("none"));
  const dl = d.deadletters || {by_class: [], redrives: {}}, lag = d.lag || {};
  document.getElementById("ops").innerHTML =
    `<div class="kv">` + dl.by_class.map(x => `<span>${esc(x["class"])}</span><span class="dim">${esc(x.topic)}</span>` +
      `<span class="num">${esc(x.messages)}</span>`).join("") +
    Object.entries(dl.redrives || {}).map(([k, v]) => `<span>${esc(t("redrives"))}</span><span class="dim">${esc(k)}</span>` +
      `<span class="num">${esc(v)}</span>`).join("") +
    `<span>${esc(t("lag_total"))}</span><span class="dim">${esc(lag.error || "")}</span><span class="num">${esc(lag.total)}</span>` +
    `<span>${esc(t("lag_pending"))}</span><span></span><span class="num">${esc(lag.pending)}</span></div>`;
}
async function poll() {
  const started = Date.now();
  try {
    const r = await fetch("/board.json", {cache: "no-store"});
    if (r.ok) { last = await r.json(); lastOk = Date.now(); render(); }
  } catch (e) { /* the worker restarting: keep the last picture, flag it as stale below */ }
  document.getElementById("stale").textContent = Date.now() - lastOk > 3000 ? t("stale") : "";
  document.getElementById("clock").textContent = new Date().toLocaleTimeString("zh-CN", {timeZone:"Asia/Shanghai", hour12:false});
  setTimeout(poll, Math.max(0, 1000 - (Date.now() - started)));  // a poll a second, however long the last one took
}
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("board-lang", lang); render();
});
render();
poll();
</script>
</body>
</html>
"""
