// Synthetic environment tools page: Selector Frequency Scan, Selector Heatmap and Environment
// Heatmap. The server renders every input from its one metric/threshold catalogue (also
// embedded as JSON for the suggested grids) and validates every request; this script only
// collects the inputs, posts them and draws the answer.
(function () {
  "use strict";

  const catalogue = JSON.parse(document.getElementById("synthetic-catalogue").textContent);
  const METRICS = Object.fromEntries(catalogue.metrics.map((m) => [m.key, m]));
  const THRESHOLDS = Object.fromEntries(catalogue.thresholds.map((t) => [t.param, t]));

  const TOOLS = {
    scan: {
      running: "Running selector scan…",
      done: "Scan complete. Value = % of decision steps the selector allows.",
      render: renderScan,
    },
    "sel-heatmap": {
      running: "Running selector heatmap…",
      done: "Heatmap complete. Cell value = % of decision steps the selector allows.",
      render: renderSelectorHeatmap,
    },
    "env-heatmap": {
      running: "Running environment heatmap…",
      done: "Heatmap complete. Cell value = % of decision steps (occupancy).",
      render: renderEnvironmentHeatmap,
    },
  };
  const FIRST_RUN_NOTE = " (the first run per underlying builds 10 years of synthetic data: a few seconds)";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(node, text, kind) {
    node.textContent = text;
    node.classList.remove("ok", "error");
    if (kind) node.classList.add(kind);
  }

  // --- reading the inputs ------------------------------------------------------------------

  function readValue(input) {
    const raw = input.value.trim();
    if (input.dataset.kind === "str") return raw;
    // An empty box is sent as null: the server answers which field is missing.
    return raw === "" ? null : Number(raw);
  }

  function readBody(panel) {
    const body = {};
    panel.querySelectorAll("[data-field]").forEach((input) => {
      body[input.dataset.field] = readValue(input);
    });
    const boxes = panel.querySelectorAll("[data-threshold]");
    if (boxes.length) {
      const swept = sweptParams(panel);
      body.thresholds = {};
      for (const box of boxes) {
        const param = box.dataset.threshold;
        if (swept.includes(param)) continue;
        const on = panel.querySelector(`[data-threshold-on="${param}"]`).checked;
        if (on && box.value.trim() === "") {
          throw new InputError(
            `${THRESHOLDS[param].label} is ticked but empty: enter a number or untick it.`,
            box,
          );
        }
        body.thresholds[param] = on ? Number(box.value) : null;
      }
    }
    return body;
  }

  class InputError extends Error {
    constructor(message, input) {
      super(message);
      this.input = input;
    }
  }

  function sweptParams(panel) {
    return Array.from(panel.querySelectorAll('select[data-suggest="threshold"]')).map((s) => s.value);
  }

  function markSwept(panel) {
    const swept = sweptParams(panel);
    panel.querySelectorAll("[data-threshold-label]").forEach((label) => {
      const isSwept = swept.includes(label.dataset.thresholdLabel);
      label.classList.toggle("swept", isSwept);
      label.querySelectorAll("input").forEach((input) => (input.disabled = isSwept));
    });
  }

  // Picking a metric (or threshold) proposes its suggested grid from the server's catalogue.
  function applySuggestion(panel, select) {
    const info = select.dataset.suggest === "metric" ? METRICS[select.value] : THRESHOLDS[select.value];
    if (!info) return;
    const axis = select.dataset.axis ? select.dataset.axis + "_" : "";
    for (const key of ["start", "step", "points"]) {
      const input = panel.querySelector(`[data-field="${axis}${key}"]`);
      if (input) input.value = info.suggested[key];
    }
  }

  function highlight(panel, field) {
    panel.querySelectorAll(".invalid").forEach((n) => n.classList.remove("invalid"));
    if (!field) return;
    let input = panel.querySelector(`[data-field="${field}"]`);
    if (!input && field.startsWith("thresholds.")) {
      input = panel.querySelector(`[data-threshold="${field.slice("thresholds.".length)}"]`);
    }
    if (input) input.classList.add("invalid");
  }

  // --- drawing -----------------------------------------------------------------------------

  function shade(value, max) {
    // White for 0, deeper blue for larger values; white text on dark cells.
    const t = max > 0 ? Math.min(value / max, 1) : 0;
    if (value <= 0) return { background: "#ffffff", color: "#6b7280" };
    const alpha = 0.12 + 0.83 * t;
    return { background: `rgba(37, 99, 235, ${alpha.toFixed(3)})`, color: alpha > 0.55 ? "#ffffff" : "#111827" };
  }

  function valueCell(value, max, title) {
    const td = el("td", { class: "cell", title: title }, `${value}%`);
    const s = shade(value, max);
    td.style.background = s.background;
    td.style.color = s.color;
    return td;
  }

  function maxOf(values) {
    return values.reduce((m, v) => (v > m ? v : m), 0);
  }

  function drawLegend(node, max, meaning) {
    node.replaceChildren(
      el("span", { class: "legend-title" }, "Colour:"),
      el("span", { class: "legend-end" }, "0%"),
      el("span", { class: "legend-bar" }),
      el("span", { class: "legend-end" }, `${max}%`),
      el("span", { class: "legend-text" }, meaning),
    );
    node.hidden = false;
  }

  function drawGrid(table, corner, xLabels, yLabels, grid, describe) {
    const max = maxOf(grid.flat());
    const thead = el("thead");
    const head = el("tr");
    head.appendChild(el("th", { class: "corner" }, corner));
    xLabels.forEach((x) => head.appendChild(el("th", { scope: "col" }, String(x))));
    thead.appendChild(head);
    const tbody = el("tbody");
    yLabels.forEach((y, j) => {
      const tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, String(y)));
      const row = grid[j] || [];
      xLabels.forEach((x, i) => {
        const v = row[i] != null ? row[i] : 0;
        tr.appendChild(valueCell(v, max, describe(x, y, v)));
      });
      tbody.appendChild(tr);
    });
    table.replaceChildren(thead, tbody);
    return max;
  }

  function thresholdSummary(thresholds) {
    const on = [];
    const off = [];
    Object.entries(thresholds || {}).forEach(([param, value]) => {
      const t = THRESHOLDS[param];
      if (!t) return;
      if (value === null) off.push(t.label);
      else on.push(`${t.label} ${t.op === "min" ? "≥" : "≤"} ${value}`);
    });
    return `Fixed thresholds: ${on.length ? on.join(", ") : "none"}` + (off.length ? ` (off or swept: ${off.join(", ")})` : "") + ".";
  }

  function renderEnvironmentHeatmap(panel, data) {
    const xName = METRICS[data.x_metric] ? METRICS[data.x_metric].label : data.x_metric;
    const yName = METRICS[data.y_metric] ? METRICS[data.y_metric].label : data.y_metric;
    const table = panel.querySelector("#env-heatmap-table");
    const max = drawGrid(table, `${yName} \\ ${xName}`, data.x_labels, data.y_labels, data.grid, (x, y, v) =>
      `${xName} from ${x}, ${yName} from ${y}: ${v}% of in-grid decision steps`,
    );
    const coverage = panel.querySelector("#env-heatmap-coverage");
    const outside = data.total_steps - data.in_grid_steps;
    coverage.textContent =
      `The grid covers ${data.coverage_pct}% of ${data.total_steps} decision steps ` +
      `(${data.in_grid_steps} inside, ${outside} outside the grid). Cells add up to 100% of the steps inside.`;
    coverage.hidden = false;
    drawLegend(
      panel.querySelector("#env-heatmap-legend"),
      max,
      "darker blue = the environment spent a larger share of the in-grid decision steps in that bucket; white = never.",
    );
  }

  function renderSelectorHeatmap(panel, data) {
    const xName = THRESHOLDS[data.x_param] ? THRESHOLDS[data.x_param].label : data.x_param;
    const yName = THRESHOLDS[data.y_param] ? THRESHOLDS[data.y_param].label : data.y_param;
    const table = panel.querySelector("#sel-heatmap-table");
    const max = drawGrid(table, `${yName} \\ ${xName}`, data.x_labels, data.y_labels, data.grid, (x, y, v) =>
      `${xName} = ${x}, ${yName} = ${y}: allowed on ${v}% of ${data.total_steps} decision steps`,
    );
    drawLegend(
      panel.querySelector("#sel-heatmap-legend"),
      max,
      `darker blue = the selector allows a trade on more of the ${data.total_steps} decision steps; white = never. ` +
        thresholdSummary(data.thresholds),
    );
  }

  function renderScan(panel, data) {
    const t = THRESHOLDS[data.param];
    const name = t ? t.label : data.param;
    const max = maxOf(data.allowed_pct);
    const thead = el("thead");
    const head = el("tr");
    head.appendChild(el("th", { scope: "col" }, `${name} (threshold value)`));
    head.appendChild(el("th", { scope: "col" }, "% of decision steps allowed"));
    head.appendChild(el("th", { scope: "col" }, "Allowed steps"));
    head.appendChild(el("th", { scope: "col", class: "bar-col" }, ""));
    thead.appendChild(head);
    const tbody = el("tbody");
    data.values.forEach((value, i) => {
      const pct = data.allowed_pct[i];
      const tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, String(value)));
      tr.appendChild(valueCell(pct, max, `${name} = ${value}: allowed on ${pct}% of decision steps`));
      tr.appendChild(el("td", {}, `${data.allowed_steps[i]} of ${data.total_steps}`));
      const barCell = el("td", { class: "bar-col" });
      const bar = el("div", { class: "pct-bar" });
      bar.style.width = `${pct}%`;
      barCell.appendChild(bar);
      tr.appendChild(barCell);
      tbody.appendChild(tr);
    });
    panel.querySelector("#scan-table").replaceChildren(thead, tbody);
    drawLegend(
      panel.querySelector("#scan-legend"),
      max,
      "darker blue = the selector allows a trade more often; the bar shows the same share out of 100%. " +
        thresholdSummary(data.thresholds),
    );
  }

  // An old result under a new error would read as the answer to the new request.
  function clearResult(panel, prefix) {
    const table = document.getElementById(`${prefix}-table`);
    const tbody = el("tbody");
    const tr = el("tr");
    tr.appendChild(el("td", { class: "placeholder" }, "No result: see the error above, correct the input and run again."));
    tbody.appendChild(tr);
    table.replaceChildren(tbody);
    ["legend", "coverage"].forEach((part) => {
      const node = document.getElementById(`${prefix}-${part}`);
      if (node) node.hidden = true;
    });
  }

  // --- running -----------------------------------------------------------------------------

  async function run(panel, tool, button, status) {
    const prefix = panel.dataset.tool;
    let body;
    try {
      highlight(panel, null);
      body = readBody(panel);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      err.input.classList.add("invalid");
      clearResult(panel, prefix);
      setStatus(status, "Error: " + err.message, "error");
      return;
    }
    button.disabled = true;
    setStatus(status, tool.running + (panel.dataset.ran ? "" : FIRST_RUN_NOTE), null);
    try {
      const response = await fetch(panel.dataset.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      let data;
      try {
        data = await response.json();
      } catch (_) {
        data = { ok: false, error: `the server answered HTTP ${response.status} without a result` };
      }
      if (!data.ok) {
        highlight(panel, data.field);
        clearResult(panel, prefix);
        setStatus(status, "Error: " + (data.error || `HTTP ${response.status}`), "error");
        return;
      }
      panel.dataset.ran = "1";
      tool.render(panel, data);
      setStatus(status, tool.done, "ok");
    } catch (err) {
      clearResult(panel, prefix);
      setStatus(status, `Error: could not reach the server (${err}).`, "error");
    } finally {
      button.disabled = false;
    }
  }

  document.querySelectorAll("[data-tool]").forEach((panel) => {
    const tool = TOOLS[panel.dataset.tool];
    if (!tool) return;
    const prefix = panel.dataset.tool;
    const button = document.getElementById(`${prefix}-run-btn`);
    const status = document.getElementById(`${prefix}-status`);
    panel.querySelectorAll("select[data-suggest]").forEach((select) => {
      select.addEventListener("change", () => {
        applySuggestion(panel, select);
        markSwept(panel);
      });
    });
    markSwept(panel);
    panel.addEventListener("input", (event) => event.target.classList.remove("invalid"));
    button.addEventListener("click", () => run(panel, tool, button, status));
  });
})();
