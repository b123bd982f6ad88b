// uPlot time-series charts of a worker's samples (GET /workers/{id}/metrics).

import uPlot from "../vendor/uPlot.esm.js";

const CHARTS = [
  {
    id: "usage",
    title: "CPU and memory",
    unit: "%",
    series: [
      { label: "CPU", key: "cpu_percent", stroke: "#1f5fbf" },
      { label: "Memory", key: "memory_percent", stroke: "#b3541e" },
    ],
  },
  {
    id: "activity",
    title: "Running labs and nodes",
    unit: "",
    series: [
      { label: "Labs", key: "labs_running", stroke: "#2d7d46" },
      { label: "Nodes", key: "nodes_running", stroke: "#7048a8" },
    ],
  },
];

function columns(samples, spec) {
  const xs = samples.map((s) => Date.parse(s.at) / 1000);
  return [xs, ...spec.series.map((s) => samples.map((sample) => sample[s.key] ?? null))];
}

/** Draw both charts into `container` over the last `hours`; returns { update(samples, hours), destroy() }. */
export function drawCharts(container, samples, hours) {
  container.innerHTML = "";
  let windowHours = hours;
  // The x axis always spans the chosen window (a single sample would otherwise span years).
  const xRange = () => {
    const now = Date.now() / 1000;
    return [now - windowHours * 3600, now];
  };
  const plots = CHARTS.map((spec) => {
    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.id = `chart-${spec.id}`;
    figure.innerHTML = `<figcaption>${spec.title}${spec.unit ? ` (${spec.unit})` : ""}</figcaption>`;
    container.append(figure);
    const width = Math.max(280, Math.min(640, (container.clientWidth || 640) / (container.clientWidth > 900 ? 2 : 1) - 24));
    const plot = new uPlot(
      {
        width,
        height: 180,
        scales: { x: { time: true, range: xRange }, y: spec.unit === "%" ? { range: [0, 100] } : { range: (u, min, max) => [0, Math.max(4, max + 1)] } },
        axes: [{}, { size: 56, values: (u, ticks) => ticks.map((t) => `${t}${spec.unit ? " " + spec.unit : ""}`) }],
        series: [
          { label: "Time" },
          ...spec.series.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            width: 2,
            points: { show: true, size: 4 },
            value: (u, v) => (v === null || v === undefined ? "—" : `${v}${spec.unit ? " " + spec.unit : ""}`),
          })),
        ],
      },
      columns(samples, spec),
      figure,
    );
    figure.dataset.points = String(samples.length);
    return { spec, plot, figure };
  });
  return {
    update(next, nextHours = windowHours) {
      windowHours = nextHours;
      for (const { spec, plot, figure } of plots) {
        plot.setData(columns(next, spec));
        figure.dataset.points = String(next.length);
      }
    },
    destroy() {
      for (const { plot } of plots) plot.destroy();
    },
  };
}
