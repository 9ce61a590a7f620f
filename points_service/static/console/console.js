// Small progressive enhancements; every page works without them.
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  document.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`).forEach((box) => {
    box.checked = all.checked;
  });
});
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
// Charts (second round): <div data-chart='{"...ECharts option..."}'> is drawn when echarts is on the page.
function drawCharts(root) {
  if (!window.echarts) return;
  root.querySelectorAll("[data-chart]").forEach((el) => {
    const chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
    chart.setOption(JSON.parse(el.dataset.chart));
  });
}
document.addEventListener("DOMContentLoaded", () => drawCharts(document));
document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.target));
window.addEventListener("resize", () => {
  if (!window.echarts) return;
  document.querySelectorAll("[data-chart]").forEach((el) => window.echarts.getInstanceByDom(el)?.resize());
});
