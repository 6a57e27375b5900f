// Behaviour shared by every page: password reveal, copy buttons, dialogs' close buttons,
// relative times. Loaded as a module by base.html (no inline script: the CSP forbids it).
import { relativeTimes, toast } from "./ui.js";

document.addEventListener("click", async (event) => {
  const reveal = event.target.closest("[data-reveal]");
  if (reveal) {
    const input = document.getElementById(reveal.dataset.reveal);
    if (!input) return;
    const shown = input.type === "password";
    input.type = shown ? "text" : "password";
    reveal.setAttribute("aria-pressed", String(shown));
    reveal.textContent = shown ? "Hide" : "Show";
    return;
  }
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const input = document.getElementById(copy.dataset.copy);
    if (!input) return;
    try {
      await navigator.clipboard.writeText(input.value);
      toast("Copied to the clipboard.");
    } catch {
      input.type = "text";
      input.select();
      toast("Select and copy it yourself (Ctrl+C): the browser refused.", "busy");
    }
    return;
  }
  const close = event.target.closest("dialog [data-close]");
  if (close) close.closest("dialog").close("cancel");
});

relativeTimes();
setInterval(relativeTimes, 30000);
