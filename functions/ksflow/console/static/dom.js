// Building DOM nodes from values. Every value from the API goes in as a text node or an attribute value,
// never as markup: a run's error or a document's name is input from users and runners.

const SVG_NS = "http://www.w3.org/2000/svg";
// Links go to the console's own routes, the API, or http(s) (presigned downloads): never `javascript:`.
const SAFE_URL = /^(#|\/(?!\/)|https?:\/\/)/i;

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    child.forEach((c) => append(parent, c));
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function build(element, props, children) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if ((name === "href" || name === "src") && !SAFE_URL.test(String(value))) {
      element.setAttribute(name, "#");
    } else if (name === "value" || name === "checked" || name === "selected" || name === "indeterminate") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** `h("a", {href: "#/runs", class: "x"}, "text", child)`: an HTML element. */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element, for charts. */
export function s(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

/** Replace an element's children. */
export function mount(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}
