// The checker's queue: "select all" for the page, and a live count of the ticked records.
(function () {
  "use strict";
  var all = document.querySelector("[data-select-all]");
  var form = all && document.getElementById(all.getAttribute("data-select-all"));
  if (!all || !form) { return; }
  var boxes = function () {
    return document.querySelectorAll('input[type=checkbox][name=record][form="' + form.id + '"]');
  };
  var status = document.getElementById("picked-count");
  function update() {
    var list = boxes(), ticked = 0;
    list.forEach(function (box) { if (box.checked) { ticked += 1; } });
    all.checked = list.length > 0 && ticked === list.length;
    all.indeterminate = ticked > 0 && ticked < list.length;
    if (status) {
      status.textContent = ticked ? ticked + " record" + (ticked === 1 ? "" : "s") + " ticked:" : "Tick records above, then:";
    }
  }
  all.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = all.checked; });
    update();
  });
  boxes().forEach(function (box) { box.addEventListener("change", update); });
  update();
}());
