// The run report's behaviour: the data is the JSON in <script id="data"> (see codesign/runs/html_report.py).
(function () {
  "use strict";
  const started = performance.now(); // the page and Plotly are parsed: what follows is the page's own work
  const D = JSON.parse(document.getElementById("data").textContent);
  const C = D.candidates;
  const LABELS = {
    energy_nj: "expected energy per inference [nJ]",
    latency_us: "expected latency per inference [\u00b5s]",
    edp_nj_us: "energy-delay product [nJ\u00b7\u00b5s]",
    worst_latency_us: "worst-case latency over the exits taken [\u00b5s]",
    macs: "expected multiply-accumulates per inference",
    weight_kib: "weights at their bit widths [KiB]",
    area: "chip area [the accelerator file's unit, mm\u00b2 by convention]",
  };
  let selected = null; // index of the network shown in the details panel
  const state = { sort: "accuracy", descending: true, filter: "", onlyReturned: false, onlyFeasible: false };
  const PART_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"];
  const partColour = {}; // one colour per memory level (or MAC, interconnect, ...) on every chart of the page
  function colourOf(part) {
    if (!(part in partColour)) partColour[part] = PART_COLOURS[Object.keys(partColour).length % PART_COLOURS.length];
    return partColour[part];
  }

  function num(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "-";
    return Number(value).toPrecision(digits || 3);
  }
  function pct(value) {
    return value === null || value === undefined ? "-" : (100 * value).toFixed(2) + "%";
  }
  function esc(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }
  function metricOf(figures, metric) {
    if (!figures) return null;
    if (metric === "edp_nj_us") return figures.energy_nj * figures.latency_us;
    const value = figures[metric];
    return value === undefined ? null : value;
  }
  function table(headers, rows, options) {
    const opts = options || {};
    const head = "<tr>" + headers.map((h, i) => `<th class="${(opts.text || []).includes(i) ? "text" : ""}">${h}</th>`).join("") + "</tr>";
    const body = rows
      .map((row, r) => {
        const cls = opts.onclick ? ' class="clickable" data-index="' + opts.onclick[r] + '"' : "";
        return `<tr${cls}>` + row.map((cell, i) => `<td class="${(opts.text || []).includes(i) ? "text" : ""}">${cell}</td>`).join("") + "</tr>";
      })
      .join("");
    return `<table>${head}${body}</table>`;
  }
  function run_accelerator(label) {
    const run = (D.runs || []).find((r) => r.label === label);
    return run ? run.accelerator : "";
  }
  function shortLayer(layer, index) {
    // "/stages.1/stages.1.0/conv1/conv/Conv" -> "7 stages.1.0/conv1": position and the module, unique and short
    const parts = layer.name.replace(/^\//, "").split("/").filter((p) => !/^(Conv|Gemm|MatMul|conv|fc)$/.test(p));
    return `${index} ${parts.slice(-2).join("/")}`;
  }
  function hoverText(c) {
    return (
      (c.run ? `run ${esc(c.run)}<br>` : "") +
      `<b>${esc(c.key)}</b>${c.returned ? " (returned)" : ""}<br>${esc(c.backbone)}<br>` +
      `exits: ${esc(c.exits_text || "final only")}<br>` +
      `accuracy ${pct(c.accuracy)} (${c.split}), energy ${num(c.energy_nj)} nJ, latency ${num(c.latency_us)} \u00b5s` +
      (c.feasible ? "" : "<br><b>violates: " + esc(Object.keys(c.violations).join(", ")) + "</b>")
    );
  }

  // ---- the Pareto plot ----
  function traces(metric) {
    document.getElementById("baseline").innerHTML = D.baseline.length
      ? table(
          [...(RUNS ? ["run"] : []), "level", "accuracy at least", "cheapest static [nJ]", "cheapest early exit [nJ]", "energy ratio", "latency ratio", "verdict"],
          D.baseline.map((r) => [
            ...(RUNS ? [esc(r.run)] : []), esc(r.level), pct(r.accuracy_at_least), num(r.static_energy_pj === null ? null : r.static_energy_pj / 1e3),
            num(r.early_exit_energy_pj === null ? null : r.early_exit_energy_pj / 1e3), num(r.energy_ratio), num(r.latency_ratio), esc(r.verdict),
          ]),
          { text: RUNS ? [0, 1, 7] : [0, 6] }
        )
      : '<div class="muted">no static baseline in this run (codesign explore --baseline)</div>';
    const returned = C.map((c, i) => [c, i]).filter(([c]) => c.returned).sort((a, b) => metricOf(a[0], metric) - metricOf(b[0], metric));
    const result = [
      {
        name: "evaluated candidates",
        type: "scatter",
        mode: "markers",
        x: C.map((c) => metricOf(c, metric)),
        y: C.map((c) => 100 * c.accuracy),
        customdata: C.map((c, i) => i),
        text: C.map(hoverText),
        hovertemplate: "%{text}<extra></extra>",
        marker: {
          size: 7,
          color: C.map((c) => (c.feasible ? "rgba(110,110,110,0.45)" : "rgba(198,40,40,0.8)")),
          symbol: C.map((c) => (c.feasible ? "circle" : "x")),
        },
      },
      ...(RUNS ? RUNS.map((run) => run.label) : [null]).map((label, r) => {
        const mine = returned.filter(([c]) => label === null || c.run === label);
        return {
          name: label === null ? "returned networks (test figures)" : `returned by ${label} (${run_accelerator(label)})`,
          type: "scatter",
          mode: "markers",
          x: mine.map(([c]) => metricOf(c, metric)),
          y: mine.map(([c]) => 100 * c.accuracy),
          customdata: mine.map(([, i]) => i),
          text: mine.map(([c]) => hoverText(c)),
          hovertemplate: "%{text}<extra></extra>",
          marker: { size: 11, color: RUN_COLOURS[r % RUN_COLOURS.length], symbol: ["circle", "diamond", "square", "triangle-up"][r % 4], line: { color: "white", width: 1 } },
        };
      }),
    ];
    const withExits = returned.filter(([c]) => c.exits.length > 1);
    if (withExits.length) {
      const xs = [], ys = [];
      withExits.forEach(([c]) => {
        xs.push(metricOf(c, metric), metricOf(c.static, metric), null);
        ys.push(100 * c.accuracy, 100 * c.static.accuracy, null);
      });
      result.push({
        name: "own static counterpart (same backbone, final exit only)",
        type: "scatter",
        mode: "lines+markers",
        x: xs,
        y: ys,
        customdata: withExits.flatMap(([, i]) => [i, i, null]),
        hoverinfo: "skip",
        line: { color: "rgba(44,160,44,0.5)", width: 1 },
        marker: { size: 8, symbol: "square-open", color: "#2ca02c" },
      });
      const oracles = withExits.filter(([c]) => c.oracle && c.oracle.accuracy !== null);
      if (oracles.length) {
        result.push({
          name: "oracle bound (cheapest exit assignment at the achieved accuracy)",
          type: "scatter",
          mode: "markers",
          x: oracles.map(([c]) => metricOf(c.oracle, metric)),
          y: oracles.map(([c]) => 100 * c.oracle.accuracy),
          customdata: oracles.map(([, i]) => i),
          text: oracles.map(([c]) => `oracle of ${esc(c.key)}: ${pct(c.oracle.accuracy)}, ${num(metricOf(c.oracle, metric))}`),
          hovertemplate: "%{text}<extra></extra>",
          marker: { size: 9, symbol: "diamond-open", color: "#9467bd" },
        });
      }
    }
    if (D.static_front.length) {
      const front = D.static_front.slice().sort((a, b) => metricOf(a, metric) - metricOf(b, metric));
      result.push({
        name: "static baseline front (--baseline)",
        type: "scatter",
        mode: "lines+markers",
        x: front.map((s) => metricOf(s, metric)),
        y: front.map((s) => 100 * s.accuracy),
        text: front.map((s) => `static ${esc(s.key)}<br>${esc(s.backbone)}<br>${pct(s.accuracy)}, ${num(metricOf(s, metric))}`),
        hovertemplate: "%{text}<extra></extra>",
        line: { color: "black", width: 1 },
        marker: { size: 10, symbol: "x", color: "black" },
      });
    }
    const chosen = selected === null ? null : C[selected];
    result.push({
      name: "selected",
      type: "scatter",
      mode: "markers",
      x: chosen ? [metricOf(chosen, metric)] : [],
      y: chosen ? [100 * chosen.accuracy] : [],
      hoverinfo: "skip",
      showlegend: false,
      marker: { size: 20, symbol: "circle-open", color: "#ff9900", line: { width: 3 } },
    });
    return result;
  }
  function layout(metric) {
    return {
      margin: { l: 60, r: 10, t: 10, b: 50 },
      xaxis: { title: { text: LABELS[metric] }, type: document.getElementById("logx").checked ? "log" : "linear" },
      yaxis: { title: { text: "accuracy [%] (test where evaluated on it)" } },
      legend: { orientation: "h", y: -0.16 },
      hovermode: "closest",
    };
  }
  function drawFront() {
    const metric = document.getElementById("metric").value;
    const missing = C.filter((c) => metricOf(c, metric) === null).length;
    const notes = [];
    if (missing) notes.push(`${missing} of ${C.length} candidates have no ${LABELS[metric]} (e.g. an accelerator file without areas) and are not drawn`);
    if ((D.run.objectives || []).length > 2)
      notes.push(`the search had ${D.run.objectives.length} objectives (${D.run.objectives.join(", ")}): drawn against two, a returned network can look dominated by one that is worse on another`);
    document.getElementById("axis-note").textContent = notes.join("; ");
    return Plotly.react("pareto", traces(metric), layout(metric), { responsive: true, displaylogo: false });
  }

  // ---- linked selection: the plot, both tables and the details panel show the same network ----
  function select(index, scroll, redraw) {
    if (!C[index]) return;
    selected = index;
    showDetails(index);
    document.querySelectorAll("tr.selected").forEach((row) => row.classList.remove("selected"));
    document.querySelectorAll(`tr.clickable[data-index="${index}"]`).forEach((row) => row.classList.add("selected"));
    if (redraw !== false) drawFront();
    document.documentElement.setAttribute("data-selected", C[index].key);
    if (scroll) {
      const details = document.getElementById("details");
      details.scrollIntoView({ block: "start", behavior: "auto" });
      details.classList.add("flash");
      setTimeout(() => details.classList.remove("flash"), 900);
    }
  }

  // ---- every candidate: sortable, filterable ----
  const RUNS = D.runs || null; // a page comparing runs: every candidate carries its run's label
  const RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
  const COLUMNS = [
    ...(RUNS ? [["run", "run", (c) => c.run, true]] : []),
    ["key", "key", (c) => c.key, true],
    ["returned", "returned", (c) => (c.returned ? 1 : 0), false],
    ["accuracy", "accuracy [%]", (c) => 100 * c.accuracy, false],
    ["energy_nj", "energy [nJ]", (c) => c.energy_nj, false],
    ["latency_us", "latency [\u00b5s]", (c) => c.latency_us, false],
    ["edp_nj_us", "EDP [nJ\u00b7\u00b5s]", (c) => c.energy_nj * c.latency_us, false],
    ["worst_latency_us", "worst latency [\u00b5s]", (c) => c.worst_latency_us, false],
    ["macs", "MACs", (c) => c.macs, false],
    ["weight_kib", "weights [KiB]", (c) => c.weight_kib, false],
    ["area", "area", (c) => (c.area === null || c.area === undefined ? null : c.area), false],
    ["vs_static", "E / own static", (c) => c.energy_nj / c.static.energy_nj, false],
    ["exits", "exits", (c) => c.exits_text || "final only", true],
    ["backbone", "backbone", (c) => c.backbone, true],
  ];
  function shownCandidates() {
    const words = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
    const column = COLUMNS.find((col) => col[0] === state.sort) || COLUMNS.find((col) => col[0] === "accuracy");
    const rows = C.map((c, i) => [c, i]).filter(([c]) => {
      if (state.onlyReturned && !c.returned) return false;
      if (state.onlyFeasible && !c.feasible) return false;
      const text = `${c.run || ""} ${c.key} ${c.backbone} ${c.exits_text} ${c.policy} ${c.hardware || ""}`.toLowerCase();
      return words.every((w) => text.includes(w));
    });
    rows.sort((a, b) => {
      const x = column[2](a[0]), y = column[2](b[0]);
      if (x === null) return 1;
      if (y === null) return -1;
      const order = column[3] ? String(x).localeCompare(String(y)) : x - y;
      return state.descending ? -order : order;
    });
    return rows;
  }
  function drawCandidates() {
    const rows = shownCandidates();
    const head = "<tr>" + COLUMNS.map(([id, label, , text]) => {
      const sorted = id === state.sort ? (state.descending ? " sorted-desc" : " sorted-asc") : "";
      return `<th class="sortable${text ? " text" : ""}${sorted}" data-sort="${id}">${label}</th>`;
    }).join("") + "</tr>";
    const body = rows.map(([c, i]) => {
      const cls = `clickable${i === selected ? " selected" : ""}${c.feasible ? "" : " bad"}`;
      const cells = COLUMNS.map(([id, , value, text]) => {
        const v = value(c);
        const shown = id === "returned" ? (v ? "yes" : "") : text ? esc(v) : id === "macs" ? (v === null ? "-" : Math.round(v).toLocaleString("en")) : num(v);
        return `<td class="${text ? "text" : ""}">${shown}</td>`;
      }).join("");
      return `<tr class="${cls}" data-index="${i}">${cells}</tr>`;
    }).join("");
    document.getElementById("candidates").innerHTML = `<table>${head}${body}</table>`;
    document.getElementById("candidate-count").textContent = `${rows.length} of ${C.length} shown`;
    document.documentElement.setAttribute("data-candidate-rows", String(rows.length));
    document.documentElement.setAttribute("data-sorted-by", `${state.sort} ${state.descending ? "desc" : "asc"}`);
    document.querySelectorAll("#candidates th.sortable").forEach((th) =>
      th.addEventListener("click", () => {
        state.descending = state.sort === th.dataset.sort ? !state.descending : !COLUMNS.find((c) => c[0] === th.dataset.sort)[3];
        state.sort = th.dataset.sort;
        drawCandidates();
      })
    );
    document.querySelectorAll("#candidates tr.clickable").forEach((row) =>
      row.addEventListener("click", () => select(Number(row.dataset.index), true))
    );
  }

  // Figures below the fold are drawn when scrolled to (or after the page is ready), not before it is usable.
  function whenVisible(id, draw) {
    const element = document.getElementById(id);
    if (!element) return;
    let done = false;
    const once = () => { if (!done) { done = true; draw(); } };
    if ("IntersectionObserver" in window) {
      const observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) { observer.disconnect(); once(); }
      });
      observer.observe(element);
    }
    setTimeout(once, 1500);
  }

  // ---- parallel coordinates over genes and objectives ----
  function drawParcoords() {
    const mean = (list) => list.reduce((a, b) => a + b, 0) / list.length;
    const dims = [
      ["accuracy [%]", (c) => 100 * c.accuracy],
      ["log10 energy [nJ]", (c) => Math.log10(c.energy_nj)],
      ["latency [\u00b5s]", (c) => c.latency_us],
      ["active exits", (c) => c.exits.length],
      ["mean weight bits", (c) => mean(c.weight_bits)],
      ["mean activation bits", (c) => mean(c.act_bits)],
      ["total width", (c) => c.widths.reduce((a, b) => a + b, 0)],
      ["total depth", (c) => c.depths.reduce((a, b) => a + b, 0)],
      ["weights [KiB]", (c) => c.weight_kib],
    ];
    Plotly.newPlot(
      "parcoords",
      [{
        type: "parcoords",
        line: { color: C.map((c) => (c.returned ? 1 : 0)), colorscale: [[0, "#bbbbbb"], [1, "#1f77b4"]] },
        dimensions: dims.map(([label, value]) => ({ label, values: C.map(value) })),
      }],
      { margin: { l: 60, r: 60, t: 40, b: 20 } },
      { displayModeBar: false, responsive: true }
    );
  }

  // ---- a state given in the address (#sort=energy_nj&desc=0&filter=res&select=KEY&metric=latency_us) ----
  function applyHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    if (params.has("sort")) state.sort = params.get("sort");
    if (params.has("desc")) state.descending = params.get("desc") !== "0";
    if (params.has("filter")) document.getElementById("filter").value = state.filter = params.get("filter");
    if (params.has("returned")) document.getElementById("only-returned").checked = state.onlyReturned = params.get("returned") === "1";
    if (params.has("metric") && LABELS[params.get("metric")]) document.getElementById("metric").value = params.get("metric");
    const key = params.get("select");
    return key === null ? null : C.findIndex((c) => c.key === key);
  }

  // ---- one network's details ----
  function showDetails(index) {
    const c = C[index];
    if (!c) return;
    const links = [];
    if (c.onnx) links.push(`<a href="${esc(c.onnx)}">ONNX (QCDQ)</a>`);
    if (c.segments) links.push(`<a href="${esc(c.segments)}/">segments for codesign infer</a>`);
    const stages = c.weight_bits.map((w, i) => [i, w, c.act_bits[i]]);
    const exits = c.exits.map((e) => [
      e.stage, e.threshold === null ? "final" : num(e.threshold), num(e.fraction),
      e.oracle_fraction === null || e.oracle_fraction === undefined ? "-" : num(e.oracle_fraction),
      e.accuracy === undefined ? "-" : num(e.accuracy),
      e.ece === null || e.ece === undefined ? "-" : `${num(e.ece, 3)} (${num(e.ece_raw, 3)})`,
      num(e.energy_nj), num(e.latency_us),
    ]);
    let html =
      `<h3>${esc(c.key)}${c.returned ? " (returned)" : ""}</h3>` +
      `<div>${esc(c.backbone)}</div><div class="muted">exits: ${esc(c.exits_text || "final only")}; policy ${esc(c.policy)}` +
      (c.hardware ? `; hardware ${esc(c.hardware)}` : "") + `</div>` +
      `<div>accuracy <b>${pct(c.accuracy)}</b> (${c.split}); search saw ${pct(c.val_accuracy_searched)} on validation` +
      (c.generation ? `; generation ${c.generation}` : "") + `</div>` +
      `<div>expected energy ${num(c.energy_nj)} nJ, latency ${num(c.latency_us)} \u00b5s (worst ${num(c.worst_latency_us)}), ` +
      `exit overhead ${num(c.exit_overhead_nj)} nJ, weights ${num(c.weight_kib)} KiB</div>` +
      (c.weight_kib_on_chip === null || c.weight_kib_on_chip === undefined ? "" :
        `<div>weights kept on chip ${num(c.weight_kib_on_chip)} KiB, streamed from off chip whenever their layer runs ` +
        `${num(c.weight_kib_streamed)} KiB` +
        (c.weight_load_nj === null ? "" : `; one-time weight load ${num(c.weight_load_nj)} nJ (not per inference)`) + `</div>`) +
      (c.energy_nj > c.static.energy_nj * (1 + 1e-9) ? `<div class="bad">costs ${num(c.energy_nj / c.static.energy_nj)}x its own static counterpart: early exit does not pay on this network</div>` : "") +
      `<div>own static counterpart: ${pct(c.static.accuracy)}, ${num(c.static.energy_nj)} nJ` +
      (c.oracle ? `; oracle: ${pct(c.oracle.accuracy)}, ${num(c.oracle.energy_nj)} nJ` : "") + `</div>` +
      (c.feasible ? "" : `<div class="bad">violates: ${esc(JSON.stringify(c.violations))}</div>`) +
      (links.length ? `<div>${links.join(" &middot; ")}</div>` : "") +
      table(["stage", "weight bits", "activation bits"], stages) +
      table(["exit after stage", "threshold", "fraction", "oracle fraction", "exit's own accuracy", "ECE after (before) temperature", "energy [nJ]", "latency [\u00b5s]"], exits) +
      `<div id="exit-parts" class="plot-small"></div><div id="layer-parts" class="plot-small"></div><div id="timeline" class="plot-small"></div><div id="layer-mappings"></div>`;
    document.getElementById("details").innerHTML = html;
    const parts = [...new Set(c.exits.flatMap((e) => Object.keys(e.parts_nj)))];
    Plotly.newPlot(
      "exit-parts",
      parts.map((part) => ({
        type: "bar", name: part, x: c.exits.map((e) => "exit after stage " + e.stage), y: c.exits.map((e) => e.parts_nj[part] || 0),
        marker: { color: colourOf(part) },
      })),
      { barmode: "stack", margin: { l: 55, r: 5, t: 28, b: 40 }, title: { text: "energy to take each exit, by where it is spent", font: { size: 12 } }, yaxis: { title: { text: "energy [nJ]" } }, legend: { font: { size: 10 } } },
      { displayModeBar: false, responsive: true }
    );
    const layers = D.layers[c.layer_key || c.key];
    if (layers) {
      const layerParts = [...new Set(layers.flatMap((l) => Object.keys(l.parts_nj)))];
      Plotly.newPlot(
        "layer-parts",
        layerParts.map((part) => ({
          type: "bar", name: part, x: layers.map(shortLayer), y: layers.map((l) => l.parts_nj[part] || 0),
          marker: { color: colourOf(part) },
          text: layers.map((l) => `${esc(l.segment)}; weights ${esc(l.weights_at)} (${num(l.weight_kib)} KiB), activations ${esc(l.activations_at)}; ${num(l.latency_us)} \u00b5s`),
          textposition: "none",
          customdata: layers.map((l) => l.name),
          hovertemplate: "%{customdata}: %{y:.3g} nJ<br>%{text}<extra>" + esc(part) + "</extra>",
        })),
        { barmode: "stack", margin: { l: 55, r: 5, t: 28, b: 120 }, showlegend: false, title: { text: "energy per layer, by where it is spent (hover: full name, weights, latency)", font: { size: 12 } }, yaxis: { title: { text: "energy [nJ]" } }, xaxis: { tickangle: -50, tickfont: { size: 10 }, automargin: true } },
        { displayModeBar: false, responsive: true }
      );
      const schedule = (D.schedules || {})[c.layer_key || c.key];
      if (schedule) {
        const cores = [...new Set(schedule.map((t) => "core " + t.core))].sort();
        Plotly.newPlot(
          "timeline",
          [
            {
              type: "bar", orientation: "h", name: "transfer between cores", y: schedule.map((t) => "core " + t.core),
              base: schedule.map((t) => t.start_us - t.transfer_us), x: schedule.map((t) => t.transfer_us),
              marker: { color: "#ffffff", line: { color: "#888", width: 1 }, pattern: { shape: "/" } },
              hovertemplate: "transfer to %{y}: %{x:.3g} \u00b5s<extra></extra>",
            },
            {
              type: "bar", orientation: "h", name: "stage or exit head", y: schedule.map((t) => "core " + t.core),
              base: schedule.map((t) => t.start_us), x: schedule.map((t) => t.finish_us - t.start_us),
              text: schedule.map((t) => t.segment), textposition: "inside",
              marker: { color: schedule.map((t) => (t.segment.startsWith("stage") ? "#4c72b0" : "#dd8452")) },
              hovertemplate: "%{text} on %{y}: %{base:.3g} to %{customdata:.3g} \u00b5s<extra></extra>",
              customdata: schedule.map((t) => t.finish_us),
            },
          ],
          { barmode: "overlay", margin: { l: 60, r: 5, t: 28, b: 40 }, title: { text: "when each stage and head runs, per core (one input through every exit; gaps: idle)", font: { size: 12 } }, xaxis: { title: { text: "time from the input's arrival [\u00b5s]" } }, yaxis: { categoryorder: "array", categoryarray: cores.reverse() }, legend: { font: { size: 10 } } },
          { displayModeBar: false, responsive: true }
        );
      } else {
        document.getElementById("timeline").style.display = "none";
      }
      document.getElementById("layer-mappings").innerHTML =
        "<h4>how ZigZag mapped each layer</h4>" +
        table(
          ["layer", "spatial unrolling", "temporal loops, innermost first [memory of O, W, I]"],
          layers.filter((l) => l.spatial_mapping && l.spatial_mapping !== "-").map((l) => [esc(l.name), esc(l.spatial_mapping), esc(l.temporal_mapping)]),
          { text: [0, 1, 2] }
        );
    } else {
      document.getElementById("layer-parts").innerHTML = '<div class="muted">per-layer costs: for returned networks</div>';
    }
  }

  // ---- the rest of the page ----
  function fillTables() {
    const run = D.run;
    if (RUNS) {
      document.getElementById("summary").innerHTML = table(
        ["run", "workload", "dataset", "accelerator", "chip area", "evaluated", "returned", "best accuracy", "cheapest returned [nJ]", "folder"],
        RUNS.map((r) => {
          const mine = C.filter((c) => c.run === r.label && c.returned);
          return [
            esc(r.label), esc(r.workload), esc(r.dataset), esc(r.accelerator), num((r.accelerator_figures || {}).chip_area), r.evaluated, r.returned,
            mine.length ? pct(Math.max(...mine.map((c) => c.accuracy))) : "-", mine.length ? num(Math.min(...mine.map((c) => c.energy_nj))) : "-", `<code>${esc(r.folder)}</code>`,
          ];
        }),
        { text: [0, 1, 2, 3, 9] }
      );
      document.documentElement.setAttribute("data-runs", String(RUNS.length));
    } else
    document.getElementById("summary").innerHTML =
      `${esc(run.workload)} on ${esc(run.dataset)}, accelerator ${esc(run.accelerator)}: ${run.evaluated} candidates evaluated, ` +
      `${run.returned} returned; objectives ${esc(run.objectives.join(", "))}` +
      (Object.keys(run.constraints).length ? `; constraints ${esc(JSON.stringify(run.constraints))}` : "") +
      ` &middot; folder <code>${esc(run.folder)}</code>`;
    document.getElementById("baseline").innerHTML = D.baseline.length
      ? table(
          [...(RUNS ? ["run"] : []), "level", "accuracy at least", "cheapest static [nJ]", "cheapest early exit [nJ]", "energy ratio", "latency ratio", "verdict"],
          D.baseline.map((r) => [
            ...(RUNS ? [esc(r.run)] : []), esc(r.level), pct(r.accuracy_at_least), num(r.static_energy_pj === null ? null : r.static_energy_pj / 1e3),
            num(r.early_exit_energy_pj === null ? null : r.early_exit_energy_pj / 1e3), num(r.energy_ratio), num(r.latency_ratio), esc(r.verdict),
          ]),
          { text: RUNS ? [0, 1, 7] : [0, 6] }
        )
      : '<div class="muted">no static baseline in this run (codesign explore --baseline)</div>';
    const returned = C.map((c, i) => [c, i]).filter(([c]) => c.returned).sort((a, b) => b[0].accuracy - a[0].accuracy);
    document.getElementById("returned").innerHTML = returned.length
      ? table(
          [...(RUNS ? ["run"] : []), "key", "accuracy", "vs own static [pt]", "energy [nJ]", "latency [\u00b5s]", "E / own static", "E / oracle", "exit fractions", "backbone"],
          returned.map(([c]) => [
            ...(RUNS ? [esc(c.run)] : []), esc(c.key), pct(c.accuracy),
            c.static.accuracy === null ? "-" : (100 * (c.accuracy - c.static.accuracy)).toFixed(1), num(c.energy_nj), num(c.latency_us),
            c.energy_nj > c.static.energy_nj * (1 + 1e-9) ? `<span class="bad" title="costs more than its own static counterpart">${num(c.energy_nj / c.static.energy_nj)} !</span>` : num(c.energy_nj / c.static.energy_nj),
            c.oracle ? num(c.energy_nj / c.oracle.energy_nj) : "-", c.exits.map((e) => num(e.fraction, 2)).join(" "), esc(c.backbone),
          ]),
          { text: RUNS ? [0, 1, 8, 9] : [0, 7, 8], onclick: returned.map(([, i]) => i) }
        )
      : '<div class="muted">no returned networks yet</div>';
    document.querySelectorAll("#returned tr.clickable").forEach((row) =>
      row.addEventListener("click", () => select(Number(row.dataset.index), true))
    );
    if (D.hypervolume.length) {
      whenVisible("hypervolume", () => Plotly.newPlot(
        "hypervolume",
        [{ type: "scatter", mode: "lines+markers", x: D.hypervolume.map((v, i) => i + 1), y: D.hypervolume, name: "hypervolume" }],
        { margin: { l: 70, r: 10, t: 30, b: 45 }, title: { text: "hypervolume of the feasible front (objectives divided by the largest value seen; reference point 1.1 per objective, so the largest possible value is 1.1^n)", font: { size: 11 } }, xaxis: { title: { text: "generation (or surrogate batch)" }, dtick: 1 }, yaxis: { title: { text: "hypervolume" } } },
        { displayModeBar: false, responsive: true }
      ));
    } else {
      document.getElementById("hypervolume").outerHTML = '<div class="muted">no generations recorded</div>';
    }
    if (D.surrogate.length) {
      document.getElementById("surrogate").innerHTML = table(
        ["round", "archive", "predictors chosen", "Kendall tau on new points"],
        D.surrogate.map((r) => [r.round, r.archive, esc(JSON.stringify(r.chosen)), esc(JSON.stringify(r.tau))]),
        { text: [2, 3] }
      );
    }
    const acc = D.accelerator;
    document.getElementById("accelerator").innerHTML = Object.keys(acc).length
      ? table(["name", "MAC array", "peak MACs/cycle", "cores", "on-chip KiB (W / I / O)", "MAC energy [pJ]", "clock [MHz]", "description"], [[
          esc(acc.name), esc(acc.array), acc.peak_macs_per_cycle, acc.cores, `${acc.on_chip_kib_W} / ${acc.on_chip_kib_I} / ${acc.on_chip_kib_O}`,
          num(acc.mac_energy_pj), num(acc.clock_mhz), esc(acc.description || ""),
        ]], { text: [0, 7] })
      : '<div class="muted">accelerator files not available</div>';
    const versions = Object.entries(D.versions);
    document.getElementById("versions").innerHTML = versions.length
      ? table(versions.map(([name]) => esc(name)), [versions.map(([, v]) => esc(v))])
      : '<div class="muted">versions not recorded (run store from an older codesign)</div>';
    document.getElementById("settings").textContent = JSON.stringify(D.settings, null, 2);
    if (D.notes.length) document.getElementById("notes").innerHTML = "<h2>Notes</h2>" + D.notes.map((n) => `<div>${esc(n)}</div>`).join("");
  }

  fillTables();
  const fromHash = applyHash();
  drawCandidates();
  whenVisible("parcoords", drawParcoords);
  document.getElementById("metric").addEventListener("change", drawFront);
  document.getElementById("logx").addEventListener("change", drawFront);
  document.getElementById("filter").addEventListener("input", (event) => { state.filter = event.target.value; drawCandidates(); });
  document.getElementById("only-returned").addEventListener("change", (event) => { state.onlyReturned = event.target.checked; drawCandidates(); });
  document.getElementById("only-feasible").addEventListener("change", (event) => { state.onlyFeasible = event.target.checked; drawCandidates(); });
  const first = C.map((c, i) => [c, i]).filter(([c]) => c.returned).sort((a, b) => b[0].accuracy - a[0].accuracy)[0];
  selected = fromHash !== null && fromHash >= 0 ? fromHash : first ? first[1] : null;
  drawFront().then(() => {
    const plot = document.getElementById("pareto");
    plot.on("plotly_click", (event) => {
      const point = event.points[0];
      if (point && point.customdata !== null && point.customdata !== undefined) select(point.customdata, false);
    });
    if (selected !== null) select(selected, false, false);
    // for checks in a headless browser: points plotted in the candidates trace, and that the page finished
    document.documentElement.setAttribute("data-candidate-points", String(plot.data[0].x.length));
    document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now() - started)));
    document.documentElement.setAttribute("data-loaded-ms", String(Math.round(started)));
    document.documentElement.setAttribute("data-ready", "1");
  });
})();
