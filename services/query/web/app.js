/* claimledger web page: subject search, per-attribute consensus charts, version details,
 * claims tables, an as_of replay slider, live updates over SSE and deep links.
 *
 * Plain ES2020, no framework and no build step (nothing may be fetched at run time; charts are
 * hand-written SVG in chart.js). Every user-provided string (subjects, quotes, sources, report
 * titles...) is rendered with textContent or as an attribute value, never as HTML: reports may
 * contain <script> on purpose.
 */
"use strict";

(function () {
  const C = window.CLChart;
  const { fmtNum, parseTime, isoDay, DAY } = C;

  // ---- state ----------------------------------------------------------------------------

  const state = {
    subjects: [],
    subject: null, // id
    subjectLabel: null,
    attrs: new Map(), // attribute -> {current, asOfVersion, asOfMissing, history, claims, colors}
    claimsById: new Map(),
    reports: new Map(), // report_id -> report | Promise
    asOf: null, // "YYYY-MM-DD" or null (latest)
    focusAttr: null,
    selected: null, // {attribute, version}
    es: null,
    loadSeq: 0,
    asOfSeq: 0,
    sliderDays: [], // day starts (ms) of the slider positions; last = latest
  };

  // ---- helpers --------------------------------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);

  /** Element builder: attrs are set as attributes/properties, children are nodes or text. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") node.className = v;
        else if (k === "dataset") Object.assign(node.dataset, v);
        else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
        else if (k === "text") node.textContent = v;
        else node.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  const enc = encodeURIComponent;

  class HttpError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  // ---- read key -------------------------------------------------------------------------
  // When the service requires a key for reads, the user gives one once; it is kept in
  // sessionStorage (this tab, until it closes), sent as Authorization on fetches and as
  // access_token on the stream (EventSource cannot send headers).
  const KEY_SLOT = "claimledger.readKey";

  function readKey() {
    try { return sessionStorage.getItem(KEY_SLOT) || ""; } catch (e) { return ""; }
  }

  function askForKey(message) {
    const form = $("#key-form");
    if (!form) return;
    form.hidden = false;
    $("#key-message").textContent = message;
    $("#read-key").focus();
  }

  function useKey(secret) {
    try { sessionStorage.setItem(KEY_SLOT, secret); } catch (e) { /* private mode: this page only */ }
    $("#key-form").hidden = true;
    loadSubjects();
    if (state.subject) openSubject(state.subject, { attribute: state.focusAttr, asOf: state.asOf });
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    const key = readKey();
    if (key) headers.Authorization = "Bearer " + key;
    const res = await fetch(path, { headers });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (res.status === 401) askForKey(key ? "That key was not accepted; enter another." : "This service needs a read key.");
    if (res.status === 403) askForKey("That key may not read; enter a read key.");
    if (!res.ok) throw new HttpError(res.status, body);
    return body;
  }

  /** The registry's label of an attribute (its key when it has none). */
  function attrLabel(a) {
    const v = a.current || {};
    return String(v.attribute_label || a.attribute);
  }

  /** Follows next_cursor through a list endpoint (bounded). */
  async function apiAll(makePath, maxPages) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < (maxPages || 20); page++) {
      const body = await api(makePath(cursor));
      items.push(...(body.items || []));
      cursor = body.next_cursor;
      if (!cursor) return { items, truncated: false };
    }
    return { items, truncated: true };
  }

  /** Only http(s) links are made clickable (a report url may be "javascript:..."). */
  function safeUrl(u) {
    if (!u || typeof u !== "string") return null;
    try {
      const url = new URL(u, location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function fmtDate(s) {
    const t = parseTime(s);
    return t === null ? "—" : isoDay(t);
  }

  function dayStart(t) {
    return Math.floor(t / DAY) * DAY;
  }

  /** as_of=YYYY-MM-DD covers reports published through the end of that day. */
  function cutFor(asOf) {
    if (!asOf) return null;
    const t = parseTime(asOf);
    if (t === null) return null;
    return asOf.length === 10 ? t + DAY - 1 : t;
  }

  function debounce(fn, ms) {
    let id = null;
    return (...args) => {
      clearTimeout(id);
      id = setTimeout(() => fn(...args), ms);
    };
  }

  function fmtValue(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") return fmtNum(v);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  /** A claim's value for humans: the raw phrase when there is one, else formatted bounds. */
  function claimValueText(c) {
    const v = c.value || {};
    if (v.text !== undefined && v.text !== null && v.hedge === "categorical") return String(v.text);
    const parts = [];
    if (v.low !== null && v.low !== undefined && v.high !== null && v.high !== undefined && v.low !== v.high) {
      parts.push(fmtNum(v.low) + "–" + fmtNum(v.high));
    } else if (v.best !== null && v.best !== undefined) {
      parts.push(fmtNum(v.best));
    } else if (v.low !== null && v.low !== undefined) {
      parts.push("≥ " + fmtNum(v.low));
    } else if (v.high !== null && v.high !== undefined) {
      parts.push("≤ " + fmtNum(v.high));
    }
    if (v.hedge === "relative" && v.relative_to) parts.push("× " + v.relative_to);
    return parts.join(" ") || (v.text ? String(v.text) : "—");
  }

  /** Headline number: the best estimate, else the bound that is known. */
  function headline(v) {
    const has = (n) => n !== null && n !== undefined;
    if (has(v.best)) return fmtNum(v.best);
    if (has(v.low) && has(v.high)) return fmtNum(v.low) + "–" + fmtNum(v.high);
    if (has(v.low)) return "≥ " + fmtNum(v.low);
    if (has(v.high)) return "≤ " + fmtNum(v.high);
    return "—";
  }

  function rangeText(v) {
    const has = (n) => n !== null && n !== undefined;
    if (!has(v.low) && !has(v.high)) return "no range";
    if (!has(v.best) && (!has(v.low) || !has(v.high))) return has(v.low) ? "lower bound only" : "upper bound only";
    return "range " + (has(v.low) ? fmtNum(v.low) : "…") + " – " + (has(v.high) ? fmtNum(v.high) : "…");
  }

  function hedgeShape(hedge) {
    if (hedge === "over" || hedge === "at_least") return "up";
    if (hedge === "up_to" || hedge === "under") return "down";
    return "circle";
  }

  /** y of a claim on the chart: best for estimates, the bound for bounds; null = not plotted. */
  function claimY(c) {
    const v = c.value || {};
    if (v.hedge === "relative" || v.hedge === "categorical") return null;
    const num = (n) => (typeof n === "number" && Number.isFinite(n) ? n : null);
    const shape = hedgeShape(v.hedge);
    if (shape === "up") return num(v.low) ?? num(v.best);
    if (shape === "down") return num(v.high) ?? num(v.best);
    if (num(v.best) !== null) return num(v.best);
    if (num(v.low) !== null && num(v.high) !== null) return Math.sqrt(Math.max(v.low, 1e-9) * v.high);
    return num(v.low) ?? num(v.high);
  }

  function validText(vt) {
    if (!vt) return "—";
    if (vt.raw) return String(vt.raw);
    return (vt.start || "…") + " → " + (vt.end || "…");
  }

  function sourceName(c) {
    const r = state.reports.get(c.report_id);
    return r && !(r instanceof Promise) && r.source && r.source.name ? String(r.source.name) : String(c.source_id || "—");
  }

  function isNumericVersion(v) {
    if (!v) return true;
    if (v.kind === "categorical" || v.kind === "state") return false;
    return !(v.value !== null && v.value !== undefined && v.best === null && v.low === null && v.high === null);
  }

  // ---- tooltip --------------------------------------------------------------------------

  const tip = {
    el: null,
    show(ev, lines) {
      const el = this.el;
      el.textContent = "";
      lines.forEach((ln, i) => el.appendChild(h("div", { class: i === 0 ? "tt-title" : "tt-line" }, ln)));
      el.hidden = false;
      this.move(ev);
    },
    move(ev) {
      const el = this.el;
      const pad = 14;
      let x = ev.clientX + pad, y = ev.clientY + pad;
      const r = el.getBoundingClientRect();
      if (x + r.width > window.innerWidth - 8) x = ev.clientX - r.width - pad;
      if (y + r.height > window.innerHeight - 8) y = ev.clientY - r.height - pad;
      el.style.left = Math.max(4, x) + "px";
      el.style.top = Math.max(4, y) + "px";
    },
    hide() { this.el.hidden = true; },
  };

  // ---- URL ------------------------------------------------------------------------------

  function readUrl() {
    const p = new URLSearchParams(location.search);
    const version = p.get("version");
    return {
      subject: p.get("subject"),
      attribute: p.get("attribute"),
      asOf: p.get("as_of"),
      version: version && /^\d+$/.test(version) ? Number(version) : null,
    };
  }

  function writeUrl(push) {
    const p = new URLSearchParams();
    if (state.subject) p.set("subject", state.subject);
    const attr = state.selected ? state.selected.attribute : state.focusAttr;
    if (state.subject && attr) p.set("attribute", attr);
    if (state.subject && state.asOf) p.set("as_of", state.asOf);
    if (state.subject && state.selected) p.set("version", String(state.selected.version));
    const qs = p.toString();
    const url = location.pathname + (qs ? "?" + qs : "");
    if (url === location.pathname + location.search) return;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }

  // ---- subjects -------------------------------------------------------------------------

  async function loadSubjects() {
    const count = $("#subject-count");
    count.textContent = "Loading…";
    try {
      const { items, truncated } = await apiAll(
        (cur) => "/v1/subjects?limit=1000" + (cur ? "&cursor=" + enc(cur) : ""), 50);
      state.subjects = items;
      state.subjectsLoaded = true;
      renderSubjectList();
      if (truncated) count.textContent += " (list truncated)";
    } catch (e) {
      count.textContent = "Could not load subjects: " + e.message;
    }
  }

  function renderSubjectList() {
    if (!state.subjectsLoaded) return;
    const q = $("#subject-search").value.trim().toLowerCase();
    const list = $("#subject-list");
    list.textContent = "";
    const matches = state.subjects.filter((s) => !q ||
      String(s.subject).toLowerCase().includes(q) || String(s.label || "").toLowerCase().includes(q));
    const shown = matches.slice(0, 300);
    for (const s of shown) {
      const nAttrs = Array.isArray(s.attributes) ? s.attributes.length : s.attributes;
      const li = h("li", {
        class: "subject-item" + (s.subject === state.subject ? " active" : ""),
        role: "option", tabindex: 0, "aria-selected": s.subject === state.subject ? "true" : "false",
        dataset: { subject: s.subject },
        onclick: () => selectSubject(s.subject),
        onkeydown: (ev) => { if (ev.key === "Enter") selectSubject(s.subject); },
      },
      h("div", { class: "si-label" }, s.label ? String(s.label) : String(s.subject)),
      h("div", { class: "si-meta" },
        h("span", { class: "mono" }, String(s.subject)),
        h("span", null, (nAttrs ?? "?") + " attr" + (nAttrs === 1 ? "" : "s") +
          (s.published_at ? " · published " + fmtDate(s.published_at) : ""))));
      list.appendChild(li);
    }
    $("#subject-count").textContent = matches.length === state.subjects.length
      ? state.subjects.length + " subject" + (state.subjects.length === 1 ? "" : "s")
      : matches.length + " of " + state.subjects.length + " subjects" +
        (matches.length > shown.length ? " (first " + shown.length + " shown)" : "");
    if (!state.subjects.length) list.appendChild(h("li", { class: "muted small pad" }, "No subjects yet — post a report to the ingest service."));
  }

  function selectSubject(subject) {
    if (subject === state.subject) return;
    state.asOf = null;
    state.focusAttr = null;
    state.selected = null;
    openSubject(subject, {});
    writeUrl(true);
  }

  // ---- subject view ---------------------------------------------------------------------

  async function openSubject(subject, { attribute, asOf, version }) {
    const seq = ++state.loadSeq;
    state.subject = subject;
    state.attrs = new Map();
    state.claimsById = new Map();
    state.asOf = asOf || null;
    state.focusAttr = attribute || null;
    state.selected = null;
    closeDetails(true);
    renderSubjectList();
    $("#empty-state").hidden = true;
    $("#subject-view").hidden = false;
    $("#subject-title").textContent = subject;
    $("#subject-id").textContent = "";
    $("#cards").textContent = "";
    $("#attribute-nav").textContent = "";
    const err = $("#subject-error");
    err.hidden = true;
    $("#cards").appendChild(h("div", { class: "loading" }, "Loading consensus…"));
    connectStream(subject);

    let summary;
    try {
      summary = await api("/v1/subjects/" + enc(subject));
    } catch (e) {
      if (seq !== state.loadSeq) return;
      $("#cards").textContent = "";
      err.hidden = false;
      err.textContent = e.status === 404 ? "No claims about “" + subject + "” yet. This page updates live when some arrive."
        : "Could not load subject: " + e.message;
      return;
    }
    if (seq !== state.loadSeq) return;
    state.subjectLabel = summary.subject_label || null;
    $("#subject-title").textContent = summary.subject_label || subject;
    $("#subject-id").textContent = summary.subject_label ? subject : "";
    document.title = (summary.subject_label || subject) + " — claimledger";

    // claims of the whole subject in one paginated read, grouped by attribute
    let claims = [];
    let claimsTruncated = false;
    try {
      const r = await apiAll((cur) => "/v1/claims?subject=" + enc(subject) + "&limit=1000" +
        (cur ? "&cursor=" + enc(cur) : ""), 10);
      claims = r.items;
      claimsTruncated = r.truncated;
    } catch (e) { /* cards still render from the consensus alone */ }
    if (seq !== state.loadSeq) return;
    const byAttr = new Map();
    for (const c of claims) {
      state.claimsById.set(c.claim_id, c);
      if (!byAttr.has(c.attribute)) byAttr.set(c.attribute, []);
      byAttr.get(c.attribute).push(c);
    }

    const attrs = summary.attributes || [];
    await Promise.all(attrs.map(async (cur) => {
      const a = { attribute: cur.attribute, current: cur, asOfVersion: null, asOfMissing: false,
        history: [], claims: byAttr.get(cur.attribute) || [], claimsTruncated, colors: new Map() };
      state.attrs.set(cur.attribute, a);
      a.history = await loadHistory(subject, cur.attribute).catch(() => []);
    }));
    if (seq !== state.loadSeq) return;

    $("#cards").textContent = "";
    renderAttrNav();
    setupSlider();
    for (const a of sortedAttrs()) $("#cards").appendChild(buildCard(a));
    if (state.asOf) await refreshAsOf();
    else renderAllCards();
    if (seq !== state.loadSeq) return;

    if (state.focusAttr) {
      const card = cardFor(state.focusAttr);
      if (card) {
        card.classList.add("focused");
        card.scrollIntoView({ block: "start" });
      }
    }
    if (state.focusAttr && version !== null && version !== undefined) {
      const a = state.attrs.get(state.focusAttr);
      const v = a && a.history.find((x) => x.version === version);
      if (v) showDetails(a, v);
    }
    loadReports(claims);
  }

  function sortedAttrs() {
    return [...state.attrs.values()].sort((x, y) => attrLabel(x).localeCompare(attrLabel(y)));
  }

  async function loadHistory(subject, attribute) {
    const base = "/v1/consensus/" + enc(subject) + "/" + enc(attribute) + "/history?limit=1000";
    const { items } = await apiAll((cur) => base + (cur ? "&after=" + enc(cur) : ""), 50);
    return items;
  }

  /** Source names and links come from the reports; fetched in the background, a few at a time. */
  async function loadReports(claims) {
    const ids = [...new Set(claims.map((c) => c.report_id))].filter((id) => !state.reports.has(id)).slice(0, 200);
    const subject = state.subject;
    let i = 0;
    const worker = async () => {
      while (i < ids.length) {
        const id = ids[i++];
        try { state.reports.set(id, await api("/v1/reports/" + enc(id))); } catch (e) { /* keep source_id */ }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    if (subject === state.subject && ids.length) for (const a of state.attrs.values()) renderTable(a);
  }

  function renderAttrNav() {
    const nav = $("#attribute-nav");
    nav.textContent = "";
    for (const a of sortedAttrs()) {
      const v = a.current;
      nav.appendChild(h("a", {
        href: "#card-" + enc(a.attribute), class: "attr-chip status-" + (v.status || "none"),
        dataset: { attribute: a.attribute },
        onclick: (ev) => {
          ev.preventDefault();
          focusAttribute(a.attribute, true);
        },
      }, attrLabel(a), h("span", { class: "chip-dot", "aria-hidden": "true" })));
    }
  }

  function focusAttribute(attribute, scroll) {
    state.focusAttr = attribute;
    document.querySelectorAll(".attribute-card.focused").forEach((n) => n.classList.remove("focused"));
    const card = cardFor(attribute);
    if (card) {
      card.classList.add("focused");
      if (scroll) card.scrollIntoView({ behavior: "smooth", block: "start" });
    }
    writeUrl(false);
  }

  function cardFor(attribute) {
    for (const c of document.querySelectorAll(".attribute-card")) {
      if (c.dataset.attribute === attribute) return c;
    }
    return null;
  }

  // ---- cards ----------------------------------------------------------------------------

  function buildCard(a) {
    const card = h("article", { class: "attribute-card", id: "card-" + enc(a.attribute),
      dataset: { attribute: a.attribute } },
    h("header", { class: "card-head" },
      h("div", { class: "card-title" },
        h("h2", { class: "attr-name", title: a.attribute, onclick: () => focusAttribute(a.attribute, false) }, attrLabel(a)),
        h("span", { class: "unit muted" }),
        h("span", { class: "kind muted small" }),
        h("span", { class: "status-badge" })),
      h("div", { class: "card-values" })),
    h("p", { class: "explanation" }),
    h("div", { class: "chart" }),
    h("div", { class: "legend small" }),
    h("details", { class: "claims-box", open: true },
      h("summary", { class: "claims-summary" }, "Claims"),
      h("div", { class: "table-wrap" })));
    return card;
  }

  function renderAllCards() {
    for (const a of state.attrs.values()) renderCard(a);
  }

  /** The version the card's header describes: the as_of answer, or the current one. */
  function shownVersion(a) {
    return state.asOf ? a.asOfVersion : a.current;
  }

  function renderCard(a) {
    const card = cardFor(a.attribute);
    if (!card) return;
    const v = shownVersion(a);
    const base = v || a.current;
    $(".unit", card).textContent = base.unit ? "(" + base.unit + ")" : "";
    $(".kind", card).textContent = base.kind || "";
    const badge = $(".status-badge", card);
    const status = v ? v.status || "no_data" : "no_data";
    badge.className = "status-badge status-" + status;
    badge.textContent = status.replace("_", " ");
    card.classList.toggle("is-contested", status === "contested");

    const vals = $(".card-values", card);
    vals.textContent = "";
    if (v) {
      if (isNumericVersion(v)) {
        vals.appendChild(h("span", { class: "best" }, headline(v)));
        vals.appendChild(h("span", { class: "range muted" }, rangeText(v)));
      } else {
        vals.appendChild(h("span", { class: "best" }, v.value !== null && v.value !== undefined ? String(v.value) : "—"));
      }
      vals.appendChild(h("span", { class: "muted small" }, "v" + v.version + " · " +
        (state.asOf ? "as of " + state.asOf : "current")));
    }
    const expl = $(".explanation", card);
    expl.textContent = v ? (v.explanation || "") :
      "No consensus yet as of " + state.asOf + " (no report about this attribute was published by then).";
    expl.classList.toggle("muted", !v);

    renderChart(a);
    renderTable(a);
  }

  function currentTimeline(a) {
    return a.history.filter((v) => v.recorded_to === null || v.recorded_to === undefined)
      .sort((x, y) => (parseTime(x.published_from) - parseTime(y.published_from)) || (x.version - y.version));
  }

  function latestVersion(a) {
    const tl = currentTimeline(a);
    return tl.length ? tl[tl.length - 1] : a.current;
  }

  /** Claim id -> {index, origin} from the latest version's clusters. */
  function clusterIndex(a) {
    const map = new Map();
    const lv = a.current || latestVersion(a);
    ((lv && lv.clusters) || []).forEach((cl, i) => {
      (cl.claim_ids || []).forEach((id) => map.set(id, { index: i, origin: cl.origin }));
    });
    return map;
  }

  function claimRole(a, id) {
    const v = shownVersion(a) || a.current;
    if (!v) return "none";
    if ((v.excluded || []).includes(id)) return "excluded";
    if ((v.dissent || []).includes(id)) return "dissent";
    if ((v.support || []).includes(id)) return "support";
    return "none";
  }

  function claimTip(a, c, role) {
    const v = c.value || {};
    const lines = [
      sourceName(c) + " — " + (v.raw ? String(v.raw) : claimValueText(c)),
      "attributed to: " + String(c.attributed_to || "—"),
      "published " + fmtDate(c.published_at) + " · hedge " + String(v.hedge || "—") + " · valid " + validText(c.valid_time),
    ];
    if (role !== "none") lines.push("role: " + role + (role === "excluded" ? " (" + excludedReason(a, c.claim_id) + ")" : ""));
    if (c.retracted) lines.push("retracted");
    const note = analystNote(a, c.claim_id);
    if (note && role !== "excluded") lines.push("analyst: " + note);
    if (c.quote) lines.push("“" + String(c.quote).slice(0, 280) + (String(c.quote).length > 280 ? "…" : "") + "”");
    return lines;
  }

  // retractions and assessments, with their reason, who and when (result `notes`)
  function analystNote(a, id) {
    const v = shownVersion(a) || a.current;
    const n = v && v.notes ? v.notes[id] : null;
    return n ? String(n) : null;
  }

  function excludedReason(a, id) {
    const v = shownVersion(a) || a.current;
    const r = v && v.exclusions ? v.exclusions[id] : null;
    return r ? String(r) : "excluded";
  }

  function chartWidth(card) {
    const el = $(".chart", card);
    return Math.floor(el.clientWidth || card.clientWidth - 32 || 800);
  }

  function renderChart(a) {
    const card = cardFor(a.attribute);
    if (!card) return;
    const box = $(".chart", card);
    box.textContent = "";
    const cut = cutFor(state.asOf);
    const timeline = currentTimeline(a);
    const clusters = clusterIndex(a);
    const selected = state.selected && state.selected.attribute === a.attribute ? state.selected.version : null;
    const onVersion = (v) => showDetails(a, v);
    const onClaim = (c) => highlightClaim(a, c.claim_id);
    const legend = $(".legend", card);
    legend.textContent = "";
    const numeric = isNumericVersion(a.current);

    if (numeric) {
      const pts = a.claims.map((c) => {
        const role = claimRole(a, c.claim_id);
        const cl = clusters.get(c.claim_id);
        const t = parseTime(c.published_at);
        return {
          claim: c, t, y: claimY(c), shape: hedgeShape((c.value || {}).hedge),
          color: cl ? C.PALETTE[cl.index % C.PALETTE.length] : "#9aa3ad",
          dissent: role === "dissent", excluded: role === "excluded", retracted: !!c.retracted,
          later: cut !== null && t !== null && t > cut,
          label: sourceName(c) + ": " + claimValueText(c),
          tipLines: claimTip(a, c, role),
        };
      });
      C.numericChart(box, { width: chartWidth(card), height: 260, timeline, claims: pts, cut,
        selected, onVersion, onClaim, tip, label: attrLabel(a) + " consensus over publication time" });
      // legend: clusters by origin, shapes by hedge
      const lv = a.current;
      ((lv && lv.clusters) || []).forEach((cl, i) => {
        legend.appendChild(h("span", { class: "lg-item" },
          h("span", { class: "lg-swatch", style: "background:" + C.PALETTE[i % C.PALETTE.length] }),
          String(cl.origin)));
      });
      legend.appendChild(h("span", { class: "lg-item lg-sep" }, "● estimate  ▲ lower bound  ▼ upper bound"));
      legend.appendChild(h("span", { class: "lg-item" }, h("span", { class: "lg-ring" }), "dissent"));
      legend.appendChild(h("span", { class: "lg-item" }, h("span", { class: "lg-band" }), "consensus low–high, line = best"));
      const unplotted = pts.filter((p) => p.y === null).length;
      if (unplotted) legend.appendChild(h("span", { class: "lg-item muted" }, unplotted + " relative/unplottable claim" + (unplotted === 1 ? "" : "s") + " (see table)"));
    } else {
      const v = shownVersion(a);
      const segments = v ? (v.segments || []) : [];
      const lanes = a.claims.map((c) => {
        const role = claimRole(a, c.claim_id);
        const vt = c.valid_time || null;
        const t = parseTime(c.published_at);
        const txt = (c.value && c.value.text !== undefined && c.value.text !== null) ? String(c.value.text) : claimValueText(c);
        return {
          claim: c, t, start: vt ? parseTime(vt.start) : null, end: vt && vt.end ? parseTime(vt.end) : null,
          text: txt, dissent: role === "dissent", excluded: role === "excluded",
          later: cut !== null && t !== null && t > cut,
          laneLabel: String(c.attributed_to || c.source_id || ""),
          label: sourceName(c) + ": " + txt, tipLines: claimTip(a, c, role),
        };
      }).sort((x, y) => (x.start ?? 0) - (y.start ?? 0));
      C.segmentChart(box, { width: chartWidth(card), segments, claims: lanes, timeline, cut,
        selected, onVersion, onClaim, tip, colors: a.colors,
        label: attrLabel(a) + " state over world time" });
      for (const [txt, col] of a.colors) {
        legend.appendChild(h("span", { class: "lg-item" }, h("span", { class: "lg-swatch", style: "background:" + col }), txt));
      }
      legend.appendChild(h("span", { class: "lg-item lg-sep muted" }, "top: consensus over world time · bars: claims' valid time · strip: versions over publication time"));
      const undated = lanes.filter((l) => l.start === null).length;
      if (undated) legend.appendChild(h("span", { class: "lg-item muted" }, undated + " undated claim" + (undated === 1 ? "" : "s") + " (see table)"));
    }
  }

  const TABLE_MAX = 500;
  const COLUMNS = ["Published", "Source", "Attributed to", "Value", "Hedge", "Valid time", "Quote", "Role"];

  function renderTable(a) {
    const card = cardFor(a.attribute);
    if (!card) return;
    const wrap = $(".table-wrap", card);
    const cut = cutFor(state.asOf);
    const rows = [...a.claims].sort((x, y) =>
      (parseTime(x.published_at) - parseTime(y.published_at)) || String(x.claim_id).localeCompare(String(y.claim_id)));
    const v = shownVersion(a) || a.current;
    const dissentN = v ? (v.dissent || []).length : 0;
    $(".claims-summary", card).textContent = "Claims (" + rows.length + (a.claimsTruncated ? "+" : "") + ")" +
      (dissentN ? " · " + dissentN + " dissenting" : "");
    const table = h("table", { class: "claims-table" },
      h("thead", null, h("tr", null, COLUMNS.map((t) => h("th", { scope: "col" }, t)))));
    const tbody = h("tbody");
    for (const c of rows.slice(0, TABLE_MAX)) {
      const role = claimRole(a, c.claim_id);
      const t = parseTime(c.published_at);
      const later = cut !== null && t !== null && t > cut;
      const report = state.reports.get(c.report_id);
      const rep = report && !(report instanceof Promise) ? report : null;
      const href = rep ? safeUrl(rep.url) : null;
      const srcCell = h("td", { class: "src" },
        href ? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, sourceName(c)) : h("span", null, sourceName(c)),
        h("div", { class: "small muted" },
          h("a", { href: "/v1/reports/" + enc(c.report_id), target: "_blank", rel: "noopener", class: "mono" }, String(c.report_id))));
      const v2 = c.value || {};
      const valueCell = h("td", { class: "val" }, h("div", null, v2.raw ? String(v2.raw) : claimValueText(c)));
      if (v2.raw) valueCell.appendChild(h("div", { class: "small muted num" }, claimValueText(c)));
      let roleText = role === "none" ? "" : role;
      if (role === "excluded") roleText = "excluded: " + excludedReason(a, c.claim_id);
      if (c.retracted) roleText = (roleText ? roleText + " · " : "") + "retracted";
      if (later) roleText = (roleText ? roleText + " · " : "") + "after as-of";
      tbody.appendChild(h("tr", {
        class: "claim-row role-" + role + (later ? " later" : "") + (c.retracted ? " retracted" : ""),
        dataset: { claimId: c.claim_id },
      },
      h("td", { class: "nowrap" }, fmtDate(c.published_at)),
      srcCell,
      h("td", null, String(c.attributed_to || "—")),
      valueCell,
      h("td", { class: "hedge" }, String(v2.hedge || "—").replace(/_/g, " ")),
      h("td", { class: "valid" }, validText(c.valid_time)),
      h("td", { class: "quote" }, c.quote ? "“" + String(c.quote) + "”" : "—"),
      h("td", { class: "role" }, roleText)));
      [...tbody.lastChild.children].forEach((td, i) => { td.dataset.label = COLUMNS[i]; });
    }
    table.appendChild(tbody);
    wrap.textContent = "";
    wrap.appendChild(table);
    if (rows.length > TABLE_MAX || a.claimsTruncated) {
      wrap.appendChild(h("p", { class: "muted small" }, "Showing the first " + Math.min(rows.length, TABLE_MAX) +
        " claims; the full list is at /v1/claims."));
    }
    if (!rows.length) wrap.appendChild(h("p", { class: "muted small pad" }, "No claims loaded."));
  }

  function highlightClaim(a, claimId) {
    const card = cardFor(a.attribute);
    if (!card) return;
    const box = $(".claims-box", card);
    box.open = true;
    for (const tr of card.querySelectorAll("tr.claim-row")) {
      const hit = tr.dataset.claimId === claimId;
      tr.classList.toggle("flash", hit);
      if (hit) tr.scrollIntoView({ behavior: "smooth", block: "nearest" });
    }
  }

  // ---- version details ------------------------------------------------------------------

  function claimLine(a, id, reason) {
    const c = state.claimsById.get(id);
    if (!c) return h("li", null, h("span", { class: "mono small" }, String(id)), reason ? h("span", { class: "reason" }, " — " + reason) : null);
    return h("li", { class: "vd-claim", dataset: { claimId: id },
      onclick: () => highlightClaim(a, id), title: "Show in the claims table" },
    h("div", { class: "vd-claim-head" },
      h("strong", null, sourceName(c)), " · ", String(c.attributed_to || ""), " · ",
      h("span", { class: "num" }, (c.value && c.value.raw) ? String(c.value.raw) : claimValueText(c)),
      h("span", { class: "muted small" }, " · " + fmtDate(c.published_at))),
    reason ? h("div", { class: "reason small" }, "excluded: " + reason) : null,
    c.quote ? h("div", { class: "vd-quote small" }, "“" + String(c.quote) + "”") : null);
  }

  function showDetails(a, v) {
    state.selected = { attribute: a.attribute, version: v.version };
    state.focusAttr = a.attribute;
    const panel = $("#version-details");
    $("#vd-title").textContent = attrLabel(a) + " · v" + v.version;
    const body = $("#vd-body");
    body.textContent = "";
    const numeric = isNumericVersion(v);
    body.appendChild(h("div", { class: "vd-meta" },
      h("span", { class: "status-badge status-" + (v.status || "none") }, String(v.status || "").replace("_", " ")),
      h("span", { class: "small muted" }, "published " + fmtDate(v.published_from) + " → " +
        (v.published_to ? fmtDate(v.published_to) : "open")),
      h("span", { class: "small muted" }, "recorded " + fmtDate(v.recorded_from) +
        (v.recorded_to ? " (superseded " + fmtDate(v.recorded_to) + ")" : ""))));
    body.appendChild(h("div", { class: "vd-values" }, numeric
      ? [h("span", { class: "best" }, headline(v)), h("span", { class: "muted" }, " " + rangeText(v) + (v.unit ? " · " + v.unit : ""))]
      : h("span", { class: "best" }, v.value !== null && v.value !== undefined ? String(v.value) : "—")));
    body.appendChild(h("p", { class: "vd-expl" }, v.explanation || ""));

    const section = (titleText, ids, reasons) => {
      if (!ids || !ids.length) return;
      body.appendChild(h("h3", null, titleText + " (" + ids.length + ")"));
      body.appendChild(h("ul", { class: "vd-list" }, ids.map((id) => claimLine(a, id, reasons ? String(reasons[id] || "excluded") : null))));
    };
    section("Support", v.support);
    section("Dissent", v.dissent);
    section("Excluded", v.excluded, v.exclusions || {});

    const diff = v.diff || {};
    const keys = Object.keys(diff);
    if (keys.length) {
      body.appendChild(h("h3", null, "What changed"));
      body.appendChild(h("table", { class: "vd-diff" },
        h("thead", null, h("tr", null, h("th", null, "field"), h("th", null, "before"), h("th", null, "after"))),
        h("tbody", null, keys.map((k) => {
          const pair = Array.isArray(diff[k]) ? diff[k] : [null, diff[k]];
          return h("tr", null, h("td", { class: "mono" }, k), h("td", null, fmtValue(pair[0])), h("td", null, fmtValue(pair[1])));
        }))));
    }
    if (v.constraints && v.constraints.length) {
      body.appendChild(h("h3", null, "Constraints"));
      body.appendChild(h("ul", { class: "vd-list small" }, v.constraints.map((s) => h("li", null, String(s)))));
    }
    if (v.method) body.appendChild(h("p", { class: "small muted" }, "method " + String(v.method.name || "") + " v" + String(v.method.version ?? "")));

    const cause = v.cause || {};
    if (cause.report_id) {
      body.appendChild(h("h3", null, "Cause"));
      const out = h("div", { class: "vd-report" });
      const url = "/v1/reports/" + enc(cause.report_id);
      body.appendChild(h("p", { class: "small" }, "report ", h("span", { class: "mono" }, String(cause.report_id)),
        cause.event_id ? h("span", { class: "muted" }, " · event " + String(cause.event_id)) : null,
        cause.trace_id ? h("span", { class: "muted", title: "X-Request-ID of the request that sent it; search the logs for trace_id" },
          " · trace " + String(cause.trace_id)) : null));
      body.appendChild(h("div", { class: "vd-actions" },
        h("button", { type: "button", class: "btn small", id: "load-cause-report",
          onclick: () => loadCauseReport(cause.report_id, out) }, "Load cause report"),
        h("a", { href: url, target: "_blank", rel: "noopener", class: "small" }, "open JSON")));
      body.appendChild(out);
    }
    panel.hidden = false;
    document.body.classList.add("details-open");
    document.querySelectorAll(".version-mark.selected").forEach((n) => n.classList.remove("selected"));
    const card = cardFor(a.attribute);
    if (card) {
      for (const m of card.querySelectorAll(".version-mark")) {
        if (Number(m.getAttribute("data-version")) === v.version) m.classList.add("selected");
      }
    }
    writeUrl(false);
  }

  async function loadCauseReport(reportId, out) {
    out.textContent = "Loading…";
    try {
      const r = await api("/v1/reports/" + enc(reportId));
      state.reports.set(reportId, r);
      out.textContent = "";
      const href = safeUrl(r.url);
      out.appendChild(h("div", { class: "vd-report-title" }, r.title ? String(r.title) : String(r.report_id)));
      out.appendChild(h("div", { class: "small" },
        (r.source && r.source.name ? String(r.source.name) : (r.source && r.source.id ? String(r.source.id) : "")) +
        (r.author ? " · " + String(r.author) : "") + " · published " + fmtDate(r.published_at) +
        " · " + (r.applied ? "applied" : "not yet applied")));
      if (href) out.appendChild(h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", class: "small" }, href));
      else if (r.url) out.appendChild(h("div", { class: "small muted" }, "url (not a web link): " + String(r.url)));
      out.appendChild(h("pre", { class: "json" }, JSON.stringify(r, null, 2)));
    } catch (e) {
      out.textContent = "Could not load report: " + e.message;
    }
  }

  function closeDetails(silent) {
    $("#version-details").hidden = true;
    document.body.classList.remove("details-open");
    state.selected = null;
    document.querySelectorAll(".version-mark.selected").forEach((n) => n.classList.remove("selected"));
    if (!silent) writeUrl(false);
  }

  // ---- as_of slider ---------------------------------------------------------------------

  function setupSlider() {
    const times = [];
    for (const a of state.attrs.values()) {
      for (const c of a.claims) times.push(parseTime(c.published_at));
      for (const v of a.history) times.push(parseTime(v.published_from));
    }
    const ts = times.filter((t) => t !== null);
    const slider = $("#as-of-slider");
    const ticks = $("#as-of-ticks");
    ticks.textContent = "";
    if (!ts.length) {
      state.sliderDays = [];
      slider.disabled = true;
      updateSliderLabel();
      return;
    }
    const d0 = dayStart(Math.min(...ts)), d1 = dayStart(Math.max(...ts));
    const asOfT = state.asOf ? parseTime(state.asOf) : null;
    const lo = asOfT !== null ? Math.min(d0, dayStart(asOfT)) : d0;
    const n = Math.round((d1 - lo) / DAY) + 1; // positions 0..n-1 are days, n = latest
    state.sliderDays = Array.from({ length: n }, (_, i) => lo + i * DAY);
    state.eventDays = [...new Set(ts.map(dayStart))].sort((x, y) => x - y);
    slider.min = "0";
    slider.max = String(n);
    slider.disabled = false;
    for (const d of state.eventDays) ticks.appendChild(h("option", { value: String(Math.round((d - lo) / DAY)) }));
    slider.value = String(sliderPosFor(state.asOf));
    updateSliderLabel();
  }

  function sliderPosFor(asOf) {
    const n = state.sliderDays.length;
    if (!asOf || !n) return n;
    const t = dayStart(parseTime(asOf));
    const pos = Math.round((t - state.sliderDays[0]) / DAY);
    return Math.max(0, Math.min(n, pos));
  }

  function asOfForPos(pos) {
    const n = state.sliderDays.length;
    if (pos >= n) return null;
    return isoDay(state.sliderDays[Math.max(0, pos)]);
  }

  function updateSliderLabel() {
    $("#as-of-value").textContent = state.asOf ? state.asOf : "latest";
    $("#as-of-latest").disabled = !state.asOf;
    document.body.classList.toggle("replaying", !!state.asOf);
  }

  const fetchAsOfSoon = debounce(() => refreshAsOf(), 220);

  function setAsOf(asOf) {
    if (asOf === state.asOf) return;
    state.asOf = asOf;
    $("#as-of-slider").value = String(sliderPosFor(asOf));
    updateSliderLabel();
    writeUrl(false);
    // redraw at once (band cut, later claims greyed), then fetch the as_of answers
    for (const a of state.attrs.values()) {
      renderChart(a);
      renderTable(a);
    }
    fetchAsOfSoon();
  }

  async function refreshAsOf(onlyAttr) {
    const seq = ++state.asOfSeq;
    const asOf = state.asOf;
    const subject = state.subject;
    const list = [...state.attrs.values()].filter((a) => !onlyAttr || a.attribute === onlyAttr);
    if (!asOf) {
      list.forEach((a) => { a.asOfVersion = null; a.asOfMissing = false; });
      list.forEach(renderCard);
      return;
    }
    await Promise.all(list.map(async (a) => {
      try {
        a.asOfVersion = await api("/v1/consensus/" + enc(subject) + "/" + enc(a.attribute) + "?as_of=" + enc(asOf));
        a.asOfMissing = false;
      } catch (e) {
        a.asOfVersion = null;
        a.asOfMissing = e.status === 404;
      }
    }));
    if (seq !== state.asOfSeq && !onlyAttr) return;
    if (subject !== state.subject || asOf !== state.asOf) return;
    list.forEach(renderCard);
  }

  function stepAsOf(dir) {
    const days = state.eventDays || [];
    if (!days.length) return;
    const cur = state.asOf ? dayStart(parseTime(state.asOf)) : Infinity;
    let target;
    if (dir < 0) {
      const prev = days.filter((d) => d < cur);
      target = prev.length ? prev[prev.length - 1] : days[0];
    } else {
      target = days.find((d) => d > cur);
    }
    setAsOf(target === undefined ? null : isoDay(target));
  }

  // ---- live updates ---------------------------------------------------------------------

  function setLive(cls, label) {
    const el = $("#live-status");
    el.className = "live-status " + cls;
    $(".live-text", el).textContent = label;
  }

  function connectStream(subject) {
    if (state.es) {
      state.es.close();
      state.es = null;
    }
    if (!window.EventSource) {
      setLive("off", "live updates unsupported");
      return;
    }
    setLive("connecting", "connecting…");
    const key = readKey();
    const es = new EventSource("/v1/stream?subject=" + enc(subject) + (key ? "&access_token=" + enc(key) : ""));
    state.es = es;
    es.onopen = () => { if (state.es === es) setLive("live", "live"); };
    es.onerror = () => {
      if (state.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        setLive("off", "disconnected — retrying");
        setTimeout(() => { if (state.es === es && state.subject === subject) connectStream(subject); }, 5000);
      } else {
        setLive("connecting", "reconnecting…");
      }
    };
    es.addEventListener("consensus", (ev) => {
      if (state.es !== es) return;
      let v;
      try { v = JSON.parse(ev.data); } catch (e) { return; }
      if (!v || v.subject !== state.subject) return;
      setLive("live", "live · updated " + new Date().toLocaleTimeString());
      scheduleRefresh(v.attribute);
    });
  }

  const pending = new Set();
  const flushRefresh = debounce(async () => {
    const attrs = [...pending];
    pending.clear();
    for (const attr of attrs) await refreshAttribute(attr).catch(() => {});
  }, 350);

  function scheduleRefresh(attribute) {
    pending.add(attribute);
    flushRefresh();
  }

  /** Re-reads one attribute (current consensus, history, claims) and redraws its card. */
  async function refreshAttribute(attribute) {
    const subject = state.subject;
    const base = "/v1/consensus/" + enc(subject) + "/" + enc(attribute);
    const [current, history, claims] = await Promise.all([
      api(base),
      loadHistory(subject, attribute),
      apiAll((cur) => "/v1/claims?subject=" + enc(subject) + "&attribute=" + enc(attribute) + "&limit=1000" +
        (cur ? "&cursor=" + enc(cur) : ""), 10),
    ]);
    if (subject !== state.subject) return;
    let a = state.attrs.get(attribute);
    const isNew = !a;
    if (isNew) {
      a = { attribute, asOfVersion: null, asOfMissing: false, colors: new Map() };
      state.attrs.set(attribute, a);
    }
    a.current = current;
    a.history = history;
    a.claims = claims.items;
    a.claimsTruncated = claims.truncated;
    for (const c of claims.items) state.claimsById.set(c.claim_id, c);
    if (isNew) {
      $("#subject-error").hidden = true;
      const cards = $("#cards");
      const card = buildCard(a);
      const next = sortedAttrs().find((x) => x.attribute > attribute);
      const nextCard = next ? cardFor(next.attribute) : null;
      if (nextCard) cards.insertBefore(card, nextCard); else cards.appendChild(card);
      renderAttrNav();
    } else {
      const chip = [...document.querySelectorAll(".attr-chip")].find((n) => n.dataset.attribute === attribute);
      if (chip) chip.className = "attr-chip status-" + (current.status || "none");
    }
    const pos = $("#as-of-slider").value;
    setupSlider();
    if (state.asOf) $("#as-of-slider").value = pos;
    if (state.asOf) await refreshAsOf(attribute);
    else renderCard(a);
    const card = cardFor(attribute);
    if (card) {
      card.classList.remove("updated");
      void card.offsetWidth; // restart the highlight animation
      card.classList.add("updated");
    }
    if (state.selected && state.selected.attribute === attribute) {
      const v = a.history.find((x) => x.version === state.selected.version);
      if (v) showDetails(a, v);
    }
    loadReports(claims.items);
    // refresh the subject list (attribute count / updated) when the subject gained a key
    if (isNew || !state.subjects.some((x) => x.subject === subject)) loadSubjects();
  }

  // ---- boot -----------------------------------------------------------------------------

  function applyUrl() {
    const u = readUrl();
    if (u.subject) {
      openSubject(u.subject, { attribute: u.attribute, asOf: u.asOf, version: u.version });
    } else {
      state.subject = null;
      if (state.es) { state.es.close(); state.es = null; }
      setLive("idle", "not connected");
      $("#subject-view").hidden = true;
      $("#empty-state").hidden = false;
      closeDetails(true);
      renderSubjectList();
    }
  }

  function init() {
    tip.el = $("#tooltip");
    const search = $("#subject-search");
    search.addEventListener("input", renderSubjectList);
    search.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        const first = $("#subject-list .subject-item");
        if (first) selectSubject(first.dataset.subject);
      } else if (ev.key === "ArrowDown") {
        const first = $("#subject-list .subject-item");
        if (first) { ev.preventDefault(); first.focus(); }
      }
    });
    $("#subject-list").addEventListener("keydown", (ev) => {
      const cur = document.activeElement;
      if (!cur || !cur.classList.contains("subject-item")) return;
      if (ev.key === "ArrowDown" && cur.nextElementSibling) { ev.preventDefault(); cur.nextElementSibling.focus(); }
      if (ev.key === "ArrowUp") { ev.preventDefault(); (cur.previousElementSibling || search).focus(); }
    });
    const slider = $("#as-of-slider");
    slider.addEventListener("input", () => setAsOf(asOfForPos(Number(slider.value))));
    $("#as-of-latest").addEventListener("click", () => setAsOf(null));
    $("#as-of-prev").addEventListener("click", () => stepAsOf(-1));
    $("#as-of-next").addEventListener("click", () => stepAsOf(1));
    $("#vd-close").addEventListener("click", () => closeDetails(false));
    $("#key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const secret = $("#read-key").value.trim();
      if (secret) useKey(secret);
    });
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && !$("#version-details").hidden) closeDetails(false);
    });
    window.addEventListener("popstate", applyUrl);
    let lastW = window.innerWidth;
    const onResize = debounce(() => {
      if (Math.abs(window.innerWidth - lastW) < 4) return;
      lastW = window.innerWidth;
      for (const a of state.attrs.values()) renderChart(a);
    }, 150);
    window.addEventListener("resize", onResize);
    loadSubjects();
    applyUrl();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
