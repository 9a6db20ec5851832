// edge-bridge status page: polls /api/status and redraws; plots are inline SVG. No build step, no CDN.
// Everything from the server is set as text (textContent), never as HTML: charger ids and reasons are not trusted.
"use strict";

const POLL_MS = 2000;
const COLORS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b", "#975a16"];
const SVG = "http://www.w3.org/2000/svg";

const TEXT = {
  zh: {
    title: "edge-bridge 充电站状态", health: "运行状态", chargers: "充电桩", live: "正在充电", daily: "每日电量（30 天）",
    orders: "最近订单", alarms: "当前告警", alarm_history: "告警记录", outbox: "上报队列", stale: "数据未更新",
    updated: "更新于", lang: "English", charger: "充电桩", connector: "枪", online: "在线", offline: "离线",
    never: "从未连接", ocpp: "OCPP", ocpp_status: "OCPP 状态", prov_status: "省平台状态", power: "功率 kW",
    soc: "SoC %", energy: "本次电量 kWh", last_seen: "最后通信", session: "会话", started: "开始",
    seq: "充电订单号", start: "开始时间", end: "结束时间", kwh: "电量 kWh", money: "金额 元", verdict: "省平台结论",
    reason: "原因", details: "分时明细", accepted: "已接受", disputed: "有争议", dead: "失败", queued: "排队中",
    "not pushed": "未上报", code: "代码", level: "级别", raised: "发生时间", note: "说明", status: "状态",
    interface: "接口", pending: "待上报", oldest: "最早等待", dead_letters: "死信", last_answer: "最后应答",
    none: "无", no_push: "本次启动后尚无上报", alive: "正常", stopped: "已停止", station: "充电站", day: "日期",
    raise: "发生", recover: "恢复", disk: "磁盘", free: "剩余", disk_full: "磁盘已满", storage: "存储",
    power_axis: "功率 (kW)", energy_axis: "电量 (kWh)", no_sessions: "当前无充电", s: "秒",
  },
  en: {
    title: "edge-bridge site status", health: "Health", chargers: "Chargers", live: "Live sessions",
    daily: "Energy per day (30 days)", orders: "Recent orders", alarms: "Open alarms", alarm_history: "Alarm history",
    outbox: "Outbox", stale: "not updating", updated: "updated", lang: "中文", charger: "Charger",
    connector: "Connector", online: "online", offline: "offline", never: "never seen", ocpp: "OCPP",
    ocpp_status: "OCPP status", prov_status: "Provincial", power: "Power kW", soc: "SoC %",
    energy: "Session kWh", last_seen: "Last seen", session: "Session", started: "Started", seq: "StartChargeSeq",
    start: "Start", end: "End", kwh: "kWh", money: "Yuan", verdict: "Verdict", reason: "Reason",
    details: "ChargeDetails", accepted: "accepted", disputed: "disputed", dead: "dead", queued: "queued",
    "not pushed": "not pushed", code: "Code", level: "Level", raised: "Raised", note: "Note", status: "Status",
    interface: "Interface", pending: "Pending", oldest: "Oldest waiting", dead_letters: "Dead letters",
    last_answer: "Last answer", none: "none", no_push: "no push since start", alive: "alive", stopped: "stopped",
    station: "Station", day: "Day", raise: "raised", recover: "recovered", disk: "Disk", free: "free",
    disk_full: "DISK FULL", storage: "Storage", power_axis: "power (kW)", energy_axis: "energy (kWh)",
    no_sessions: "nothing charging", s: "s",
  },
};

let lang = localStorage.getItem("edge-bridge-lang") || (navigator.language.startsWith("zh") ? "zh" : "en");
let last = null;
let health = null;
const t = (key) => TEXT[lang][key] ?? key;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function local(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function kw(watts) { return watts === null ? "-" : (Number(watts) / 1000).toFixed(2); }
function dash(v) { return v === null || v === undefined || v === "" ? "-" : v; }
function pill(text, cls) { return h("span", { class: `pill ${cls}` }, text); }
function table(id, head, rows) {
  const el = document.getElementById(id);
  el.replaceChildren(h("thead", {}, h("tr", {}, head.map((k) => h("th", {}, t(k))))), h("tbody", {}, rows));
  if (!rows.length) el.tBodies[0].append(h("tr", {}, h("td", { colspan: head.length, class: "muted" }, t("none"))));
}

// ------------------------------------------------------------------------------------------------ sections

function drawHealth() {
  const el = document.getElementById("health");
  const parts = [];
  if (health) {
    for (const [name, state] of Object.entries(health.components)) {
      parts.push(pill(`${name}: ${t(state)}`, state === "alive" ? "ok" : "bad"), " ");
    }
  }
  if (last) {
    const st = last.status.storage;
    const free = st.free_bytes === null ? "?" : `${(st.free_bytes / 2 ** 20).toFixed(0)} MiB`;
    parts.push(st.disk_full ? pill(t("disk_full"), "bad") : pill(`${t("disk")} ${t("free")} ${free}`, "ok"));
  }
  el.replaceChildren(...parts);
}

function chargerRows(c) {
  const state = c.connected ? "online" : c.last_seen ? "offline" : "never";
  const rows = [];
  const conns = c.connectors.length ? c.connectors : [null];
  conns.forEach((k, i) => {
    const first = i === 0;
    rows.push(h("tr", first ? { "data-charger": c.ocpp_id, "data-online": c.connected ? "1" : "0" } : {},
      h("td", {}, first ? c.ocpp_id : ""),
      h("td", {}, first ? pill(t(state), c.connected ? "ok" : "bad") : ""),
      h("td", {}, first ? dash(c.ocpp_version) : ""),
      h("td", {}, k ? (k.connector_id || `${k.evse}/${k.connector}`) : "-"),
      h("td", {}, k ? dash(k.ocpp_status) + (k.error_code && k.error_code !== "NoError" ? ` (${k.error_code})` : "") : "-"),
      h("td", { class: "num" }, k ? dash(k.provincial_status) : "-"),
      h("td", { class: "num" }, k && openOn(c.ocpp_id, k) ? kw(k.power_w) : "-"),
      h("td", { class: "num" }, k && openOn(c.ocpp_id, k) ? dash(k.soc_percent) : "-"),
      h("td", { class: "num" }, k ? sessionEnergy(c.ocpp_id, k) : "-"),
      h("td", {}, first ? local(c.last_seen) : "")));
  });
  return rows;
}

// the open session on a connector (every open one, not only those plotted): power and SoC are shown only while
// one is open, since the last reading of a finished session stays in the store
function openOn(charger, k) {
  return last.status.open_sessions.find((x) => x.charger === charger && x.evse === k.evse && x.connector === k.connector);
}

function sessionEnergy(charger, k) {
  const open = openOn(charger, k);
  return open ? dash(open.energy_kwh) : "-";
}

function drawChargers() {
  const head = ["charger", "status", "ocpp", "connector", "ocpp_status", "prov_status", "power", "soc", "energy", "last_seen"];
  table("chargers", head, last.status.chargers.flatMap(chargerRows));
}

function drawLive() {
  const cards = last.live.map((x) => h("div", { class: "card", "data-session": x.session_id, "data-energy-kwh": dash(x.energy_kwh) },
    h("div", { class: "head" },
      h("strong", {}, `${x.charger} ${x.evse}/${x.connector}`),
      h("span", {}, `${t("session")} #${x.session_id}`),
      h("span", {}, `${t("started")} ${local(x.started_at)}`),
      h("span", { class: "live-energy" }, `${dash(x.energy_kwh)} kWh`)),
    sessionPlot(x.points)));
  document.getElementById("live").replaceChildren(...(cards.length ? cards : [h("p", { class: "muted" }, t("no_sessions"))]));
}

function sessionPlot(points) {
  const W = 560, H = 160, L = 40, R = 40, T = 10, B = 22;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const pts = points.map(([at, e, p]) => [Date.parse(at), e === null ? null : Number(e), p === null ? null : Number(p)]);
  if (pts.length < 1) return svg;
  const x0 = pts[0][0], x1 = Math.max(pts[pts.length - 1][0], x0 + 1);
  const eMax = 1.1 * Math.max(0.001, ...pts.map((q) => q[1] ?? 0)), pMax = 1.1 * Math.max(0.001, ...pts.map((q) => q[2] ?? 0));
  const X = (v) => L + ((v - x0) / (x1 - x0)) * (W - L - R);
  const Y = (v, max) => T + (1 - v / max) * (H - T - B);
  axes(svg, W, H, L, R, T, B);
  svg.append(s("text", { x: 2, y: T + 8 }, pMax.toFixed(1)), s("text", { x: W - R + 4, y: T + 8 }, eMax.toFixed(2)));
  svg.append(s("text", { x: L, y: H - 6 }, local(new Date(x0).toISOString())), s("text", { x: W - R - 90, y: H - 6 }, local(new Date(x1).toISOString())));
  svg.append(line(pts.filter((q) => q[2] !== null).map((q) => [X(q[0]), Y(q[2], pMax)]), COLORS[1]));
  svg.append(line(pts.filter((q) => q[1] !== null).map((q) => [X(q[0]), Y(q[1], eMax)]), COLORS[0]));
  svg.append(s("text", { x: L + 6, y: T + 10, fill: COLORS[1] }, t("power_axis")), s("text", { x: L + 86, y: T + 10, fill: COLORS[0] }, t("energy_axis")));
  return svg;
}

function axes(svg, W, H, L, R, T, B) {
  svg.append(s("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fafbfc", stroke: "#d5dae1" }));
}

function line(xy, color) {
  const d = xy.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
  return s("path", { d: d || "M0,0", fill: "none", stroke: color, "stroke-width": 2 });
}

function drawDaily() {
  const { days, stations } = last.daily;
  const W = 560, H = 170, L = 40, R = 10, T = 10, B = 24;
  const totals = days.map((_, i) => stations.reduce((sum, st) => sum + Number(st.kwh[i]), 0));
  const max = Math.max(0.001, ...totals);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", id: "daily-plot" });
  axes(svg, W, H, L, R, T, B);
  const bw = (W - L - R) / days.length;
  days.forEach((day, i) => {
    let y = H - B;
    stations.forEach((st, j) => {
      const hgt = (Number(st.kwh[i]) / max) * (H - T - B);
      if (hgt <= 0) return;
      y -= hgt;
      const bar = s("rect", { x: L + i * bw + 1, y, width: Math.max(1, bw - 2), height: hgt, fill: COLORS[j % COLORS.length] });
      bar.append(s("title", {}, `${day} ${st.name}: ${st.kwh[i]} kWh`));
      svg.append(bar);
    });
    if (i % 5 === 4 || i === days.length - 1) svg.append(s("text", { x: L + i * bw, y: H - 8 }, day.slice(5)));
  });
  svg.append(s("text", { x: 2, y: T + 8 }, max.toFixed(1)), s("text", { x: 2, y: H - B }, "0"));
  const legend = h("div", { class: "legend" }, stations.map((st, j) => h("span", {}, swatch(COLORS[j % COLORS.length]), `${st.name} (kWh)`)));
  document.getElementById("daily").replaceChildren(svg, legend);
}

function swatch(color) {
  const svg = s("svg", { viewBox: "0 0 10 10", width: 10, height: 10, class: "swatch" });
  svg.append(s("rect", { width: 10, height: 10, fill: color }));
  return svg;
}

const VERDICT = { accepted: "ok", disputed: "bad", dead: "bad", queued: "warn", "not pushed": "warn" };

function drawOrders() {
  const rows = last.orders.map((o) => h("tr", { "data-order": dash(o.start_charge_seq), "data-verdict": o.verdict },
    h("td", {}, dash(o.start_charge_seq)),
    h("td", {}, `${o.charger} ${o.evse}/${o.connector}`),
    h("td", {}, dash(o.start_time)), h("td", {}, dash(o.end_time)),
    h("td", { class: "num" }, dash(o.total_power_kwh)), h("td", { class: "num" }, dash(o.total_money)),
    h("td", {}, pill(t(o.verdict), VERDICT[o.verdict] || "")),
    h("td", {}, dash(o.reason)),
    h("td", {}, details(o.charge_details))));
  table("orders", ["seq", "connector", "start", "end", "kwh", "money", "verdict", "reason", "details"], rows);
}

function details(list) {
  if (!list.length) return "-";
  const keys = ["DetailStartTime", "DetailEndTime", "ElecPrice", "SevicePrice", "DetailPower", "DetailElecMoney", "DetailSeviceMoney"];
  const rows = list.map((d) => h("tr", {}, keys.map((k) => h("td", {}, dash(d[k])))));
  return h("details", {}, h("summary", {}, `${list.length}`), h("table", {}, h("tr", {}, keys.map((k) => h("th", {}, k))), rows));
}

function drawAlarms() {
  const open = last.status.active_alarms.map((a) => h("tr", {},
    h("td", {}, `${a.charger} ${a.evse}/${a.connector}`), h("td", {}, a.code), h("td", {}, a.level),
    h("td", {}, local(a.raised_at)), h("td", {}, a.note)));
  table("alarms", ["connector", "code", "level", "raised", "note"], open);
  const past = last.alarm_history.map((a) => h("tr", {},
    h("td", {}, dash(a.ConnectorID || a.EquipmentID)), h("td", {}, dash(a.AlarmCode)),
    h("td", {}, a.AlarmStatus === 1 ? pill(t("raise"), "bad") : pill(t("recover"), "ok")),
    h("td", {}, dash(a.AlarmTime)), h("td", {}, t(a.outbox_state === "sent" ? "accepted" : a.outbox_state === "pending" ? "queued" : "dead")),
    h("td", {}, dash(a.NoteString))));
  table("alarm-history", ["connector", "code", "status", "raised", "verdict", "note"], past);
}

function drawOutbox() {
  const o = last.outbox;
  const depth = h("table", {}, h("tr", {}, ["interface", "pending", "oldest"].map((k) => h("th", {}, t(k)))),
    o.pending.length ? o.pending.map((p) => h("tr", {}, h("td", {}, p.interface), h("td", { class: "num" }, p.count),
      h("td", { class: p.oldest_age_s > 300 ? "warn" : "" }, `${p.oldest_age_s} ${t("s")}`)))
      : h("tr", {}, h("td", { colspan: 3, class: "muted" }, t("none"))));
  const a = o.last_answer;
  const answer = h("p", { id: "last-answer" }, `${t("last_answer")}: `, a === null ? t("no_push")
    : `${local(a.at)} ${a.outcome}${a.ret === null ? "" : ` Ret ${a.ret}`} ${a.reason || ""}`);
  const dead = h("table", {}, h("tr", {}, ["interface", "reason", "raised"].map((k) => h("th", {}, t(k)))),
    o.dead.map((d) => h("tr", {}, h("td", {}, `${d.interface} #${d.id}`), h("td", {}, d.reason), h("td", {}, local(d.at)))));
  const deadHead = h("h3", {}, `${t("dead_letters")}: `, h("span", { class: o.dead_count ? "bad" : "ok" }, o.dead_count));
  document.getElementById("outbox").replaceChildren(answer, h("div", { class: "scroll" }, depth), deadHead, h("div", { class: "scroll" }, dead));
}

// ------------------------------------------------------------------------------------------------ the loop

function drawAll() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.getElementById("lang").textContent = t("lang");
  drawHealth();
  if (!last) return;
  document.getElementById("updated").textContent = `${t("updated")} ${local(last.generated_at)}`;
  drawChargers(); drawLive(); drawDaily(); drawOrders(); drawAlarms(); drawOutbox();
}

async function fetchJson(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok && response.status !== 503) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function poll() {
  try {
    [last, health] = await Promise.all([fetchJson("/api/status"), fetchJson("/healthz")]);
    document.getElementById("stale").hidden = true;
    drawAll();
  } catch (err) {
    document.getElementById("stale").hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("edge-bridge-lang", lang);
  drawAll();
});
drawAll();
poll();
