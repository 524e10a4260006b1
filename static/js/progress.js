// Keeps the "Today's uploads" bar current while batches are being sent (polls every 2 s, stops when idle).
(function () {
  "use strict";
  var box = document.getElementById("upload-progress");
  if (!box || !window.fetch) { return; }
  var bar = box.querySelector("progress");
  var idleRounds = 0;
  function show(data) {
    bar.max = Math.max(data.total, 1);
    bar.value = data.settled;
    box.querySelectorAll("[data-field]").forEach(function (el) {
      el.textContent = String(data[el.getAttribute("data-field")]);
    });
    idleRounds = (data.pending === 0 && data.sending_batches === 0) ? idleRounds + 1 : 0;
  }
  function poll() {
    fetch(box.getAttribute("data-progress-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(show)
      .catch(function () { idleRounds += 1; })
      .finally(function () { if (idleRounds < 5) { window.setTimeout(poll, 2000); } });
  }
  window.setTimeout(poll, 2000);
}());
