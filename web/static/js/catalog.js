// Catalogue: filter the cards as the user types (the form still works without script).
const input = document.getElementById("chart-search");
const cards = [...document.querySelectorAll("#chart-cards [data-search]")];
const count = document.getElementById("search-count");
const none = document.getElementById("no-match");

function filter() {
  const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const card of cards) {
    const match = words.every((w) => card.dataset.search.includes(w));
    card.hidden = !match;
    if (match) shown += 1;
  }
  count.textContent = `${shown} of ${cards.length} services`;
  none.hidden = shown > 0;
}

if (input && cards.length) {
  input.addEventListener("input", filter);
  input.form.addEventListener("submit", (event) => {
    event.preventDefault();
    filter();
  });
  // Words typed before this module ran (a slow page), or restored by the browser on "back".
  if (input.value) filter();
}

// Chart icons: an icon that cannot be had leaves its monogram (drawn behind it) in view.
for (const icon of document.querySelectorAll("img.chart-icon-img")) {
  const drop = () => icon.remove();
  icon.addEventListener("error", drop);
  // This module may run after an icon already failed: decode() rejects for those.
  if (icon.complete) icon.decode().catch(drop);
}
