// Draw every figure that the page embeds as JSON, and submit the filters when a select changes.
(function () {
  "use strict";
  var config = {
    displaylogo: false,
    responsive: true,
    toImageButtonOptions: { format: "png", scale: 2 },
  };
  document.querySelectorAll("script.jm-figure").forEach(function (node) {
    var figure = JSON.parse(node.textContent);
    var target = document.getElementById(node.dataset.target);
    var options = Object.assign({}, config, {
      toImageButtonOptions: { format: "png", scale: 2, filename: "journeymap-" + node.dataset.target },
    });
    window.Plotly.newPlot(target, figure.data, figure.layout, options);
  });
  document.querySelectorAll("form.filters select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
