// Keeps an import's progress bar current while a worker checks or imports the file (polls every 1.5 s);
// reloads the page once the job is no longer running, to show the preview or the outcome.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || !window.fetch) { return; }
  var bar = box.querySelector("progress");
  var failures = 0;
  function show(data) {
    if (!data.running) { window.location.reload(); return false; }
    if (data.total > 0) { bar.max = data.total; bar.value = data.done; }
    box.querySelectorAll("[data-field]").forEach(function (el) {
      el.textContent = String(data[el.getAttribute("data-field")]);
    });
    var status = document.getElementById("job-status");
    if (status) { status.textContent = data.label; }
    return true;
  }
  function poll() {
    fetch(box.getAttribute("data-progress-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) { failures = 0; if (show(data)) { window.setTimeout(poll, 1500); } })
      .catch(function () { failures += 1; if (failures < 10) { window.setTimeout(poll, 3000); } });
  }
  window.setTimeout(poll, 1500);
}());
