// Live quotes: the server pushes snapshot changes; update every element showing that instrument.
(function () {
  if (!window.EventSource) return;
  var wanted = {};
  document.querySelectorAll("[data-q]").forEach(function (el) { wanted[el.getAttribute("data-q")] = 1; });
  var ids = Object.keys(wanted);
  if (!ids.length) return;
  var fmt = function (v) { return Number(v).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2}); };
  var signed = function (v) { return (v > 0 ? "+" : "") + Number(v).toFixed(2); };
  var src = new EventSource("/live/quotes?ids=" + encodeURIComponent(ids.join(",")));
  src.addEventListener("quote", function (ev) {
    var q = JSON.parse(ev.data);
    var dir = q.change > 0 ? "up" : (q.change < 0 ? "down" : "flat");
    document.querySelectorAll('[data-q="' + q.id + '"]').forEach(function (el) {
      el.classList.remove("up", "down", "flat"); el.classList.add(dir);
      var px = el.querySelector(".px"); if (px) px.textContent = fmt(q.price);
      var pct = el.querySelector(".pct"); if (pct && q.change_percent != null) pct.textContent = signed(q.change_percent) + "%";
      var chg = el.querySelector(".chg");
      if (chg && q.change != null) chg.textContent = signed(q.change) + " (" + signed(q.change_percent) + "%)";
    });
  });
})();
