/**
 * miniprogram-simulate (j-component) needs a DOM: jsdom provides it. Pages are written with the
 * Component constructor, so each page loads as a component and its lifecycle methods are called as the
 * framework would (onLoad, onShow).
 */
const path = require('node:path')
const { JSDOM } = require('jsdom')

const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true })
globalThis.window = dom.window
globalThis.document = dom.window.document
for (const name of ['Node', 'HTMLElement', 'Element', 'Event', 'CustomEvent', 'getComputedStyle']) {
  if (!(name in globalThis)) globalThis[name] = dom.window[name]
}
const simulate = require('miniprogram-simulate')

const ROOT = path.resolve(__dirname, '..', '..')

/** Renders pages/<name>/<name> and attaches it, like the framework showing the page. */
function renderPage(name) {
  // One compile of the whole project: the official compiler's output shares global state between roots.
  const id = simulate.load(path.join(ROOT, 'pages', name, name), `page-${name}`, { rootPath: ROOT })
  const page = simulate.render(id)
  page.attach(document.createElement('parent-wrapper'))
  return page
}

/** Waits until `predicate()` is true (pages await several requests), failing after `ms`. */
async function until(predicate, ms = 2000) {
  const started = Date.now()
  while (!predicate()) {
    if (Date.now() - started > ms) throw new Error('condition not met in time')
    await simulate.sleep(5)
  }
}

function text(page, selector) {
  const node = page.querySelector(selector)
  return node ? node.dom.textContent.trim() : null
}

function all(page, selector) {
  return page.querySelectorAll(selector)
}

module.exports = { simulate, renderPage, until, text, all, ROOT }
