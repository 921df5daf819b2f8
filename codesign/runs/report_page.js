// The run report's behaviour: the data is the JSON in <script id="data"> (see codesign/runs/html_report.py).
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("data").textContent);
  const C = D.candidates;
  const LABELS = {
    energy_nj: "expected energy per inference [nJ]",
    latency_us: "expected latency per inference [\u00b5s]",
    edp_nj_us: "energy-delay product [nJ\u00b7\u00b5s]",
  };
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
    return figures[metric];
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
  function hoverText(c) {
    return (
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
          ["level", "accuracy at least", "cheapest static [nJ]", "cheapest early exit [nJ]", "energy ratio", "latency ratio", "verdict"],
          D.baseline.map((r) => [
            esc(r.level), pct(r.accuracy_at_least), num(r.static_energy_pj === null ? null : r.static_energy_pj / 1e3),
            num(r.early_exit_energy_pj === null ? null : r.early_exit_energy_pj / 1e3), num(r.energy_ratio), num(r.latency_ratio), esc(r.verdict),
          ]),
          { text: [0, 6] }
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
      {
        name: "returned networks (test figures)",
        type: "scatter",
        mode: "markers",
        x: returned.map(([c]) => metricOf(c, metric)),
        y: returned.map(([c]) => 100 * c.accuracy),
        customdata: returned.map(([, i]) => i),
        text: returned.map(([c]) => hoverText(c)),
        hovertemplate: "%{text}<extra></extra>",
        marker: { size: 11, color: "#1f77b4", line: { color: "white", width: 1 } },
      },
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
    return Plotly.react("pareto", traces(metric), layout(metric), { responsive: true, displaylogo: false });
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
      e.stage, e.threshold === null ? "final" : num(e.threshold), num(e.fraction), num(e.energy_nj), num(e.latency_us),
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
      table(["exit after stage", "threshold", "fraction", "energy [nJ]", "latency [\u00b5s]"], exits) +
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
    const layers = D.layers[c.key];
    if (layers) {
      const layerParts = [...new Set(layers.flatMap((l) => Object.keys(l.parts_nj)))];
      Plotly.newPlot(
        "layer-parts",
        layerParts.map((part) => ({
          type: "bar", name: part, x: layers.map((l) => l.name), y: layers.map((l) => l.parts_nj[part] || 0),
          marker: { color: colourOf(part) },
          text: layers.map((l) => `${esc(l.segment)}; weights ${esc(l.weights_at)} (${num(l.weight_kib)} KiB), activations ${esc(l.activations_at)}; ${num(l.latency_us)} \u00b5s`),
          textposition: "none",
          hovertemplate: "%{x}: %{y:.3g} nJ<br>%{text}<extra>" + esc(part) + "</extra>",
        })),
        { barmode: "stack", margin: { l: 55, r: 5, t: 28, b: 90 }, showlegend: false, title: { text: "energy per layer, by where it is spent", font: { size: 12 } }, yaxis: { title: { text: "energy [nJ]" } }, xaxis: { tickangle: -60, tickfont: { size: 8 } } },
        { displayModeBar: false, responsive: true }
      );
      const schedule = (D.schedules || {})[c.key];
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
    document.getElementById("summary").innerHTML =
      `${esc(run.workload)} on ${esc(run.dataset)}, accelerator ${esc(run.accelerator)}: ${run.evaluated} candidates evaluated, ` +
      `${run.returned} returned; objectives ${esc(run.objectives.join(", "))}` +
      (Object.keys(run.constraints).length ? `; constraints ${esc(JSON.stringify(run.constraints))}` : "") +
      ` &middot; folder <code>${esc(run.folder)}</code>`;
    document.getElementById("baseline").innerHTML = D.baseline.length
      ? table(
          ["level", "accuracy at least", "cheapest static [nJ]", "cheapest early exit [nJ]", "energy ratio", "latency ratio", "verdict"],
          D.baseline.map((r) => [
            esc(r.level), pct(r.accuracy_at_least), num(r.static_energy_pj === null ? null : r.static_energy_pj / 1e3),
            num(r.early_exit_energy_pj === null ? null : r.early_exit_energy_pj / 1e3), num(r.energy_ratio), num(r.latency_ratio), esc(r.verdict),
          ]),
          { text: [0, 6] }
        )
      : '<div class="muted">no static baseline in this run (codesign explore --baseline)</div>';
    const returned = C.map((c, i) => [c, i]).filter(([c]) => c.returned).sort((a, b) => b[0].accuracy - a[0].accuracy);
    document.getElementById("returned").innerHTML = returned.length
      ? table(
          ["key", "accuracy", "energy [nJ]", "latency [\u00b5s]", "E / own static", "E / oracle", "exit fractions", "backbone"],
          returned.map(([c]) => [
            esc(c.key), pct(c.accuracy), num(c.energy_nj), num(c.latency_us), num(c.energy_nj / c.static.energy_nj),
            c.oracle ? num(c.energy_nj / c.oracle.energy_nj) : "-", c.exits.map((e) => num(e.fraction, 2)).join(" "), esc(c.backbone),
          ]),
          { text: [0, 6, 7], onclick: returned.map(([, i]) => i) }
        )
      : '<div class="muted">no returned networks yet</div>';
    document.querySelectorAll("#returned tr.clickable").forEach((row) =>
      row.addEventListener("click", () => showDetails(Number(row.dataset.index)))
    );
    if (D.hypervolume.length) {
      Plotly.newPlot(
        "hypervolume",
        [{ type: "scatter", mode: "lines+markers", x: D.hypervolume.map((v, i) => i + 1), y: D.hypervolume, name: "hypervolume" }],
        { margin: { l: 60, r: 10, t: 10, b: 45 }, xaxis: { title: { text: "generation (or surrogate batch)" }, dtick: 1 }, yaxis: { title: { text: "hypervolume of the feasible front (normalised objectives)" } } },
        { displayModeBar: false, responsive: true }
      );
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
  document.getElementById("metric").addEventListener("change", drawFront);
  document.getElementById("logx").addEventListener("change", drawFront);
  drawFront().then(() => {
    const plot = document.getElementById("pareto");
    plot.on("plotly_click", (event) => {
      const point = event.points[0];
      if (point && point.customdata !== null && point.customdata !== undefined) showDetails(point.customdata);
    });
    const first = C.map((c, i) => [c, i]).filter(([c]) => c.returned).sort((a, b) => b[0].accuracy - a[0].accuracy)[0];
    if (first) showDetails(first[1]);
    // for checks in a headless browser: points plotted in the candidates trace, and that the page finished
    document.documentElement.setAttribute("data-candidate-points", String(plot.data[0].x.length));
    document.documentElement.setAttribute("data-ready", "1");
  });
})();
