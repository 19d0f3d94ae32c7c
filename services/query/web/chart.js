/* claimledger — hand-rolled SVG charts for the consensus page.
 *
 * Why no chart library: the page is served by the query service with no CDN, no network at run
 * time and no build step, so any library would have to be vendored here by hand. The two charts
 * we need (a stepped band over publication time with points, and a labelled segment timeline)
 * are a few hundred lines of plain SVG, which is smaller and easier to audit than a vendored
 * library. All text goes through textContent (never innerHTML): report strings are untrusted.
 */
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const DAY = 86400000;

  // Colour-blind-friendly palette with no red: red is reserved for dissent.
  const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#8c6d31",
    "#6a51a3", "#17becf", "#b5a000", "#5f6b7a"];

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v !== null && v !== undefined && v !== false) node.setAttribute(k, String(v));
      }
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, str, attrs) {
    const t = svg("text", Object.assign({ x, y }, attrs || {}), parent);
    t.textContent = str;
    return t;
  }

  function title(node, str) {
    const t = svg("title", null, node);
    t.textContent = str;
    return t;
  }

  const numFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const compactFmt = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

  function fmtNum(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "—";
    return numFmt.format(n);
  }

  function fmtAxisNum(n) {
    return Math.abs(n) >= 1e7 ? compactFmt.format(n) : numFmt.format(n);
  }

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function parseTime(s) {
    if (!s) return null;
    const t = Date.parse(s.length === 10 ? s + "T00:00:00Z" : s);
    return Number.isNaN(t) ? null : t;
  }

  function isoDay(t) {
    return new Date(t).toISOString().slice(0, 10);
  }

  // ---- scales ---------------------------------------------------------------------------

  function linear(d0, d1, r0, r1) {
    const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
    const f = (v) => r0 + (v - d0) * k;
    f.domain = [d0, d1];
    f.range = [r0, r1];
    return f;
  }

  function logScale(d0, d1, r0, r1) {
    const l0 = Math.log10(d0), l1 = Math.log10(d1);
    const k = (r1 - r0) / (l1 - l0);
    const f = (v) => r0 + (Math.log10(Math.max(v, d0)) - l0) * k;
    f.domain = [d0, d1];
    f.range = [r0, r1];
    f.log = true;
    return f;
  }

  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }

  /** y scale over values: linear from 0 unless the spread is wide, then log10. */
  function yScaleFor(values, r0, r1) {
    const vals = values.filter((v) => typeof v === "number" && Number.isFinite(v));
    if (!vals.length) return null;
    let lo = Math.min(...vals), hi = Math.max(...vals);
    const positive = vals.filter((v) => v > 0);
    if (lo >= 0 && positive.length && hi / Math.min(...positive) >= 40) {
      const pmin = Math.min(...positive);
      const d0 = Math.pow(10, Math.floor(Math.log10(pmin / 1.3)));
      const d1 = Math.pow(10, Math.ceil(Math.log10(hi * 1.3)));
      const s = logScale(d0, d1, r0, r1);
      const decades = Math.log10(d1 / d0);
      const ticks = [];
      for (let p = Math.log10(d0); p <= Math.log10(d1) + 1e-9; p++) {
        const base = Math.pow(10, p);
        for (const m of decades <= 3 ? [1, 2, 5] : [1]) {
          const v = base * m;
          if (v >= d0 && v <= d1) ticks.push(v);
        }
      }
      s.ticks = ticks;
      return s;
    }
    if (lo > 0) lo = 0;
    if (hi === lo) hi = lo + (Math.abs(lo) || 1);
    let step = niceStep((hi - lo) / 5);
    if (step < 1 && vals.every((v) => Number.isInteger(v))) step = 1; // counts: no 0.5 ticks
    const d0 = Math.floor(lo / step) * step;
    const d1 = Math.ceil((hi * 1.08) / step) * step;
    const s = linear(d0, d1, r0, r1);
    s.ticks = [];
    for (let v = d0; v <= d1 + step * 1e-9; v += step) s.ticks.push(Math.round(v * 1e9) / 1e9);
    return s;
  }

  /** Time ticks at calendar boundaries suited to the span. */
  function timeTicks(t0, t1) {
    const span = (t1 - t0) / DAY;
    const ticks = [];
    const d = new Date(t0);
    let y = d.getUTCFullYear(), m = d.getUTCMonth();
    if (span > 365 * 4) {
      for (let yy = y + 1; Date.UTC(yy, 0, 1) <= t1; yy++) {
        ticks.push({ t: Date.UTC(yy, 0, 1), label: String(yy) });
      }
    } else if (span > 45) {
      const every = span > 730 ? 6 : span > 300 ? 3 : 1;
      m = m + 1;
      for (; ; m++) {
        const t = Date.UTC(y, m, 1);
        if (t > t1) break;
        const dd = new Date(t);
        if (dd.getUTCMonth() % every !== 0) continue;
        const label = dd.getUTCMonth() === 0 || ticks.length === 0
          ? MONTHS[dd.getUTCMonth()] + " " + dd.getUTCFullYear() : MONTHS[dd.getUTCMonth()];
        ticks.push({ t, label });
      }
    } else {
      const every = span > 14 ? 7 : span > 4 ? 2 : 1;
      let t = Date.UTC(y, m, d.getUTCDate() + 1);
      for (let i = 0; t <= t1; i++, t += DAY) {
        if (i % every !== 0) continue;
        const dd = new Date(t);
        ticks.push({ t, label: dd.getUTCDate() + " " + MONTHS[dd.getUTCMonth()] });
      }
    }
    return ticks;
  }

  function timeDomain(times, padFrac) {
    const ts = times.filter((t) => t !== null && Number.isFinite(t));
    if (!ts.length) {
      const now = Date.now();
      return [now - 30 * DAY, now + DAY];
    }
    let t0 = Math.min(...ts), t1 = Math.max(...ts);
    if (t1 - t0 < 20 * DAY) {
      t0 -= 10 * DAY;
      t1 += 10 * DAY;
    }
    const pad = (t1 - t0) * (padFrac === undefined ? 0.05 : padFrac);
    return [t0 - pad, t1 + pad];
  }

  function xAxis(g, x, top, bottom, ticks) {
    for (const tk of ticks) {
      const px = x(tk.t);
      svg("line", { x1: px, x2: px, y1: top, y2: bottom, class: "grid" }, g);
      // keep labels inside the plot: anchor to the edge when a centred label would overflow
      const half = tk.label.length * 3.3;
      const anchor = px + half > x.range[1] + 10 ? "end" : px - half < x.range[0] - 30 ? "start" : "middle";
      text(g, px, bottom + 14, tk.label, { class: "axis-label", "text-anchor": anchor });
    }
    svg("line", { x1: x.range[0], x2: x.range[1], y1: bottom, y2: bottom, class: "axis" }, g);
  }

  // ---- marks ----------------------------------------------------------------------------

  function marker(parent, shape, cx, cy, r, attrs) {
    if (shape === "up" || shape === "down") {
      const s = r * 1.25;
      const pts = shape === "up"
        ? [[cx, cy - s], [cx - s, cy + s * 0.75], [cx + s, cy + s * 0.75]]
        : [[cx, cy + s], [cx - s, cy - s * 0.75], [cx + s, cy - s * 0.75]];
      return svg("polygon", Object.assign({ points: pts.map((p) => p.join(",")).join(" ") }, attrs),
        parent);
    }
    return svg("circle", Object.assign({ cx, cy, r }, attrs), parent);
  }

  /** Vertical, clickable version marks (publication time). */
  function versionMarks(g, x, top, bottom, versions, opts) {
    const mg = svg("g", { class: "version-marks" }, g);
    versions.forEach((v) => {
      const t = parseTime(v.published_from);
      if (t === null) return;
      const px = x(t);
      const later = opts.cut !== null && t > opts.cut;
      const m = svg("g", {
        class: "version-mark" + (later ? " later" : "") +
          (opts.selected === v.version ? " selected" : "") +
          (v.status === "contested" ? " contested" : ""),
        "data-version": v.version, tabindex: 0, role: "button",
        "aria-label": "Version " + v.version + " published " + isoDay(t) + ": " +
          (v.explanation || ""),
      }, mg);
      svg("line", { x1: px, x2: px, y1: top, y2: bottom, class: "vm-line" }, m);
      svg("rect", { x: px - 6, y: top - 12, width: 12, height: bottom - top + 12, class: "vm-hit" }, m);
      svg("path", { d: `M${px - 4},${top - 10} h8 l-4,6 z`, class: "vm-head" }, m);
      title(m, "v" + v.version + " · " + isoDay(t) + " · " + (v.status || "") + "\n" +
        (v.explanation || ""));
      const activate = (ev) => { ev.stopPropagation(); opts.onVersion(v); };
      m.addEventListener("click", activate);
      m.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); activate(ev); }
      });
    });
  }

  function asOfLine(g, x, top, bottom, cut) {
    if (cut === null) return;
    const px = x(cut);
    if (px < x.range[0] || px > x.range[1]) return;
    svg("rect", { x: px, y: top, width: Math.max(0, x.range[1] - px), height: bottom - top,
      class: "future-shade" }, g);
    svg("line", { x1: px, x2: px, y1: top - 4, y2: bottom, class: "asof-line" }, g);
    const nearRight = px + 96 > x.range[1];
    text(g, nearRight ? px - 4 : px + 4, top + 10, "as of " + isoDay(cut),
      { class: "asof-text", "text-anchor": nearRight ? "end" : "start" });
  }

  function hoverable(node, tip, html) {
    node.addEventListener("mouseenter", (ev) => tip.show(ev, html()));
    node.addEventListener("mousemove", (ev) => tip.move(ev));
    node.addEventListener("mouseleave", () => tip.hide());
  }

  // ---- numeric chart --------------------------------------------------------------------

  /**
   * opts: {width, height, timeline (current versions sorted), claims: [{claim, t, y, shape,
   * color, dissent, excluded, later}], cut (ms or null), selected (version), onVersion(v),
   * onClaim(claim), tip}
   */
  function numericChart(container, opts) {
    const W = Math.max(280, opts.width), H = opts.height || 260;
    const M = { l: 68, r: 14, t: 18, b: 26 };
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart-svg",
      role: "img", "aria-label": opts.label || "consensus chart" });
    container.appendChild(root);

    const times = [];
    opts.timeline.forEach((v) => {
      times.push(parseTime(v.published_from));
      if (v.published_to) times.push(parseTime(v.published_to));
    });
    // fit the axis to what is drawn: a claim without a plottable value (a relative one)
    // must not stretch it
    opts.claims.forEach((c) => { if (c.y !== null && c.y !== undefined) times.push(c.t); });
    if (opts.cut !== null) times.push(opts.cut);
    const [t0, t1] = timeDomain(times);
    const x = linear(t0, t1, M.l, W - M.r);
    root.dataset.t0 = String(Math.round(t0));
    root.dataset.t1 = String(Math.round(t1));

    const yvals = [];
    opts.timeline.forEach((v) => yvals.push(v.low, v.best, v.high));
    opts.claims.forEach((c) => yvals.push(c.y));
    const y = yScaleFor(yvals, H - M.b, M.t);
    if (!y) {
      text(root, W / 2, H / 2, "No numeric values to plot", { class: "empty-text", "text-anchor": "middle" });
      return root;
    }
    const top = M.t, bottom = H - M.b;

    const grid = svg("g", { class: "axes" }, root);
    for (const v of y.ticks) {
      const py = y(v);
      svg("line", { x1: M.l, x2: W - M.r, y1: py, y2: py, class: "grid" }, grid);
      text(grid, M.l - 6, py + 4, fmtAxisNum(v), { class: "axis-label", "text-anchor": "end" });
    }
    if (y.log) text(grid, M.l - 6, top - 6, "log scale", { class: "axis-note", "text-anchor": "end" });
    xAxis(grid, x, top, bottom, timeTicks(t0, t1));

    // band + best line, drawn as steps over the current timeline, cut at as_of
    const band = svg("g", { class: "band-layer" }, root);
    const yTop = y.domain[1], yBot = y.domain[0];
    let bestPath = "";
    let prevBest = null;
    opts.timeline.forEach((v) => {
      let a = parseTime(v.published_from);
      let b = v.published_to ? parseTime(v.published_to) : t1;
      if (opts.cut !== null) b = Math.min(b, opts.cut);
      if (a === null || b <= a) { prevBest = null; return; }
      const x0 = x(a), x1 = x(b);
      const lo = v.low, hi = v.high;
      if (lo !== null || hi !== null) {
        const yl = y(lo !== null ? lo : yBot), yh = y(hi !== null ? hi : yTop);
        const r = svg("rect", { x: x0, y: Math.min(yl, yh), width: Math.max(0.5, x1 - x0),
          height: Math.max(1, Math.abs(yl - yh)),
          class: "band status-" + (v.status || "none") + (hi === null ? " open-top" : "") +
            (lo === null ? " open-bottom" : "") }, band);
        title(r, "v" + v.version + ": " + fmtNum(lo) + " – " + fmtNum(hi) +
          (v.best !== null ? " (best " + fmtNum(v.best) + ")" : ""));
        if (lo !== null) svg("line", { x1: x0, x2: x1, y1: yl, y2: yl, class: "band-edge" }, band);
        if (hi !== null) svg("line", { x1: x0, x2: x1, y1: yh, y2: yh, class: "band-edge" }, band);
      }
      if (v.best !== null && v.best !== undefined) {
        const yb = y(v.best);
        bestPath += (prevBest !== null ? `L${x0},${yb}` : `M${x0},${yb}`) + `L${x1},${yb}`;
        prevBest = yb;
      } else {
        prevBest = null;
      }
    });
    if (bestPath) svg("path", { d: bestPath, class: "best-line" }, band);

    asOfLine(root, x, top, bottom, opts.cut);
    versionMarks(root, x, top, bottom, opts.timeline, opts);

    // claim points
    const pts = svg("g", { class: "claim-points" }, root);
    const placed = new Map();
    opts.claims.forEach((c) => {
      if (c.t === null || c.y === null || c.y === undefined) return;
      let cx = x(c.t), cy = y(c.y);
      const key = Math.round(cx) + ":" + Math.round(cy);
      const n = placed.get(key) || 0; // nudge exact duplicates so none hides another
      placed.set(key, n + 1);
      cx += n * 5;
      const g = svg("g", {
        class: "claim-point" + (c.dissent ? " dissent" : "") + (c.excluded ? " excluded" : "") +
          (c.later ? " later" : "") + (c.retracted ? " retracted" : ""),
        "data-claim-id": c.claim.claim_id, tabindex: 0, role: "button",
        "aria-label": c.label,
      }, pts);
      marker(g, c.shape, cx, cy, 5, { fill: c.excluded || c.retracted ? "#fff" : c.color,
        stroke: c.dissent ? "#d62728" : c.color, class: "pt" });
      hoverable(g, opts.tip, () => c.tipLines);
      g.addEventListener("click", () => opts.onClaim(c.claim));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") opts.onClaim(c.claim); });
    });
    return root;
  }

  // ---- categorical / state chart --------------------------------------------------------

  function colorForText(textValue, map) {
    if (!map.has(textValue)) map.set(textValue, PALETTE[map.size % PALETTE.length]);
    return map.get(textValue);
  }

  /**
   * A labelled timeline over world (valid) time: the consensus segments on top, each dated
   * claim as a thin bar below, then a strip of version marks over publication time.
   * opts: {width, segments, claims: [{claim, start, end, text, dissent, excluded, later}],
   * timeline, cut, selected, onVersion, onClaim, tip}
   */
  function segmentChart(container, opts) {
    const W = Math.max(280, opts.width);
    const laneH = 16, segH = 30;
    const maxLanes = 14;
    const lanes = opts.claims.filter((c) => c.start !== null).slice(0, maxLanes);
    // the left margin fits the origins' names (up to 40% of the width); longer ones are
    // shortened to fit and given whole in their tooltip
    const CHAR_W = 6.4;
    const longest = Math.max(9, ...lanes.map((c) => c.laneLabel.length));
    const M = { l: Math.round(Math.min(W * 0.4, Math.max(112, longest * CHAR_W + 20))), r: 14, t: 10 };
    const fits = Math.max(4, Math.floor((M.l - 12) / CHAR_W));
    const hidden = opts.claims.filter((c) => c.start !== null).length - lanes.length;
    const segTop = M.t, segBottom = segTop + segH;
    const lanesTop = segBottom + 10;
    const lanesBottom = lanesTop + lanes.length * laneH;
    const axisY = lanesBottom + 4;
    const stripTop = axisY + 34, stripBottom = stripTop + 26;
    const H = stripBottom + 22;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart-svg",
      role: "img", "aria-label": opts.label || "state timeline" });
    container.appendChild(root);

    const vt = [];
    opts.segments.forEach((s) => { vt.push(parseTime(s.valid_from)); vt.push(parseTime(s.valid_to)); });
    lanes.forEach((c) => { vt.push(c.start); vt.push(c.end); });
    let [v0, v1] = timeDomain(vt, 0.06);
    const openEnd = v1 + (v1 - v0) * 0.0; // open intervals run to the right edge
    const x = linear(v0, v1, M.l, W - M.r);
    const colors = opts.colors || new Map();

    const g = svg("g", { class: "axes" }, root);
    xAxis(g, x, segTop, axisY, timeTicks(v0, v1));
    text(g, M.l - 8, segTop + segH / 2 + 4, "consensus", { class: "lane-label strong", "text-anchor": "end" });

    if (!opts.segments.length) {
      text(g, (M.l + W - M.r) / 2, segTop + segH / 2 + 4, "no dated segments",
        { class: "empty-text", "text-anchor": "middle" });
    }
    opts.segments.forEach((s) => {
      const a = parseTime(s.valid_from) ?? v0;
      const b = s.valid_to ? parseTime(s.valid_to) : openEnd;
      const label = s.text !== null && s.text !== undefined ? String(s.text)
        : (s.best !== null && s.best !== undefined ? fmtNum(s.best) : "?");
      const col = colorForText(label, colors);
      const seg = svg("g", { class: "segment status-" + (s.status || "none") }, root);
      const w = Math.max(1, x(b) - x(a));
      svg("rect", { x: x(a), y: segTop, width: w, height: segH, fill: col, class: "seg-rect" }, seg);
      if (!s.valid_to) {
        svg("path", { d: `M${x(b) - 1},${segTop} l8,${segH / 2} l-8,${segH / 2} z`, fill: col,
          class: "seg-open" }, seg);
      }
      const t = text(seg, x(a) + 6, segTop + segH / 2 + 4, label, { class: "seg-label" });
      if (label.length * 7 > w - 8) t.textContent = w > 40 ? label.slice(0, Math.max(1, Math.floor((w - 14) / 7))) + "…" : "";
      title(seg, label + " · " + (s.valid_from || "…") + " → " + (s.valid_to || "open") +
        " · " + (s.status || "") + " · " + ((s.support || []).length) + " supporting, " +
        ((s.dissent || []).length) + " dissenting");
    });

    lanes.forEach((c, i) => {
      const yy = lanesTop + i * laneH;
      const a = c.start, b = c.end !== null ? c.end : openEnd;
      const col = colorForText(c.text, colors);
      const lg = svg("g", {
        class: "claim-lane claim-point" + (c.dissent ? " dissent" : "") + (c.excluded ? " excluded" : "") +
          (c.later ? " later" : ""), "data-claim-id": c.claim.claim_id, tabindex: 0, role: "button",
        "aria-label": c.label,
      }, root);
      const lab = text(lg, M.l - 8, yy + 11, c.laneLabel, { class: "lane-label", "text-anchor": "end" });
      if (c.laneLabel.length > fits) lab.textContent = c.laneLabel.slice(0, fits - 1) + "…";
      title(lab, c.laneLabel);
      svg("rect", { x: x(a), y: yy + 3, width: Math.max(3, x(b) - x(a)), height: laneH - 6, rx: 3,
        fill: c.excluded ? "#fff" : col, stroke: c.dissent ? "#d62728" : col, class: "lane-bar" }, lg);
      const tl = text(lg, x(a) + 4, yy + 11.5, c.text, { class: "lane-text" });
      if (x(b) - x(a) < c.text.length * 6 + 8) tl.textContent = "";
      hoverable(lg, opts.tip, () => c.tipLines);
      lg.addEventListener("click", () => opts.onClaim(c.claim));
      lg.addEventListener("keydown", (ev) => { if (ev.key === "Enter") opts.onClaim(c.claim); });
    });
    if (hidden > 0) {
      text(root, M.l - 8, lanesBottom + 2, "+" + hidden + " more", { class: "lane-label", "text-anchor": "end" });
    }

    // versions strip over publication time
    const pt = [];
    opts.timeline.forEach((v) => pt.push(parseTime(v.published_from)));
    opts.claims.forEach((c) => pt.push(c.t));
    if (opts.cut !== null) pt.push(opts.cut);
    const [p0, p1] = timeDomain(pt);
    const px = linear(p0, p1, M.l, W - M.r);
    const sg = svg("g", { class: "axes strip" }, root);
    text(sg, M.l - 8, stripTop + 16, "versions", { class: "lane-label strong", "text-anchor": "end" });
    text(sg, W - M.r, stripTop - 8, "publication time →", { class: "axis-note", "text-anchor": "end" });
    svg("rect", { x: M.l, y: stripTop, width: W - M.r - M.l, height: stripBottom - stripTop, class: "strip-bg" }, sg);
    xAxis(sg, px, stripTop, stripBottom, timeTicks(p0, p1));
    // each version's state, as a coloured step along publication time
    opts.timeline.forEach((v) => {
      let a = parseTime(v.published_from);
      let b = v.published_to ? parseTime(v.published_to) : p1;
      if (opts.cut !== null) b = Math.min(b, opts.cut);
      if (a === null || b <= a) return;
      const label = v.value !== null && v.value !== undefined ? String(v.value) : "";
      svg("rect", { x: px(a), y: stripTop + 8, width: Math.max(1, px(b) - px(a)), height: 10,
        fill: label ? colorForText(label, colors) : "#c9ced6", class: "strip-step" }, sg);
    });
    asOfLine(root, px, stripTop, stripBottom, opts.cut);
    versionMarks(root, px, stripTop, stripBottom, opts.timeline, opts);
    root.dataset.colors = "";
    return root;
  }

  window.CLChart = {
    PALETTE, svg, fmtNum, parseTime, isoDay, numericChart, segmentChart, colorForText, DAY,
  };
})();
