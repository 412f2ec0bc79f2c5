// Building the page from data. Everything that comes from the network goes
// in as text (textContent, attributes), never as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/**
 * el builds an element. attrs: "class", "on" ({event: fn}), "data-…",
 * boolean properties (hidden, disabled, checked, open) and plain attributes;
 * null/undefined/false values are skipped. Children: nodes, strings, arrays.
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === "hidden" || k === "disabled" || k === "checked" || k === "open" || k === "value") e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c == null || c === false || c === "") continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : String(c));
  }
}

/** set replaces the children of node. */
export function set(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** join puts " · " between the non-empty parts. */
export const join = (...parts) => parts.flat().filter((p) => p != null && p !== "").join(" · ");

/**
 * keepFocus runs draw, which rebuilds node's content, and gives the focus
 * back to the element with the same id if it was inside: live updates must
 * not pull the focus from under a keyboard user.
 */
export function keepFocus(node, draw) {
  const a = document.activeElement;
  const id = a && a !== node && node.contains(a) ? a.id : "";
  draw();
  if (id) document.getElementById(id)?.focus({ preventScroll: true });
}
