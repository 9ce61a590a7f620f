/**
 * Lists that load "more on scroll": a component keeps rows, page, total, loading, done and failed in its data;
 * reset() empties them, loadMore() and loadOlder() append the next rows (never two loads at once, nothing after
 * the last page).
 *
 * loadMore pages by number (?page=). loadOlder pages by key (?before=<the last id shown>): a list that changes
 * while it is read — messages read off the 未读 tab, new ones arriving on top — neither skips nor repeats a row.
 *
 * reset() also drops a load still on its way (another tab or period chosen meanwhile): each reset starts a new
 * generation, an answer for an earlier one is thrown away, and the reset list loads at once instead of waiting.
 */
const FRESH = { rows: [], page: 0, total: 0, loading: false, done: false, failed: false }
const generations = new WeakMap()

function generation(component) {
  return generations.get(component) || 0
}

function reset(component) {
  generations.set(component, generation(component) + 1)
  component.setData(FRESH)
}

/** Runs one load: fetch(data) → the API's page; next(page, rows, data) → the paging data to set. */
async function load(component, fetch, toRow, extra, next) {
  const { data } = component
  if (data.loading || data.done) return
  const started = generation(component)
  const current = () => generation(component) === started // not reset meanwhile
  component.setData({ loading: true })
  try {
    const page = await fetch(data)
    if (!current()) return
    const rows = component.data.rows.concat(page.items.map(toRow))
    component.setData({ rows, ...next(page, rows, component.data), ...extra(page) })
  } catch (error) {
    if (current()) component.setData({ failed: true })  // the request module has shown why
  } finally {
    if (current()) component.setData({ loading: false })
  }
}

/**
 * fetch(pageNumber) → the API's page {items, page, total, …}; toRow(item) → what the page shows;
 * extra(page) → further data to set from the page (e.g. an unread count).
 */
function loadMore(component, fetch, toRow, extra = () => ({})) {
  return load(component, (data) => fetch(data.page + 1), toRow, extra, (page, rows) => ({
    page: page.page, total: page.total, done: rows.length >= page.total || !page.items.length }))
}

/**
 * fetch(lastRow) → the API's page of the items older than the last row shown (lastRow undefined: the newest),
 * whose total counts from there; rows carry the item's id. toRow and extra as for loadMore.
 */
function loadOlder(component, fetch, toRow, extra = () => ({})) {
  return load(component, (data) => fetch(data.rows[data.rows.length - 1]), toRow, extra, (page, rows, data) => ({
    page: data.page + 1, total: data.rows.length + page.total,
    done: page.items.length >= page.total || !page.items.length }))
}

module.exports = { reset, loadMore, loadOlder }
