// Shows and hides dependent parts of the record form; hidden fields are cleared so nothing stale is saved.
(function () {
  "use strict";
  function bind(control, target, isOn) {
    if (!control || !target) { return; }
    function update(clear) {
      var on = isOn(control);
      target.hidden = !on;
      if (!on && clear) {
        target.querySelectorAll("input, select, textarea").forEach(function (el) {
          if (el.type === "checkbox") { el.checked = false; } else { el.value = ""; }
        });
      }
    }
    control.addEventListener("change", function () {
      update(true);
      var country = target.querySelector("select[name=current_country]");
      if (country && isOn(control) && !country.value) { country.value = "IN"; }
    });
    update(false);
  }
  bind(document.querySelector("[name=current_address_same_as_poa_address]"),
       document.getElementById("current-address"),
       function (el) { return el.value === "N"; });
  bind(document.querySelector("[name=differently_abled_flag]"),
       document.getElementById("disability"),
       function (el) { return el.checked; });
}());
