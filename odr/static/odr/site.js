// Progressive enhancement only: every page works without this file.
"use strict";

// "Add another party" on the application form: clone the empty formset row.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector("[data-formset-add]");
  if (!button) return;
  const prefix = button.dataset.formsetAdd;
  const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
  const template = document.getElementById(`${prefix}-empty`);
  const list = document.getElementById(`${prefix}-list`);
  button.hidden = false;
  button.addEventListener("click", () => {
    const index = Number(total.value);
    const row = template.content.cloneNode(true);
    row.querySelectorAll("[name],[id],[for]").forEach((el) => {
      for (const attr of ["name", "id", "for"]) {
        if (el.hasAttribute(attr)) el.setAttribute(attr, el.getAttribute(attr).replace("__prefix__", index));
      }
    });
    list.appendChild(row);
    total.value = index + 1;
    list.lastElementChild.querySelector("input")?.focus();
  });
});
