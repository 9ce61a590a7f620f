/**
 * Lists that load "more on scroll": a component keeps rows, page, total, loading, done and failed in its data;
 * reset() empties them, loadMore() appends the next page (never two loads at once, nothing after the last page).
 */
const FRESH = { rows: [], page: 0, total: 0, done: false, failed: false }

function reset(component) {
  component.setData(FRESH)
}

/**
 * fetch(pageNumber) → the API's page {items, page, total, …}; toRow(item) → what the page shows;
 * extra(page) → further data to set from the page (e.g. an unread count).
 */
async function loadMore(component, fetch, toRow, extra = () => ({})) {
  const { loading, done, page: current, rows: shown } = component.data
  if (loading || done) return
  component.setData({ loading: true })
  try {
    const page = await fetch(current + 1)
    const rows = shown.concat(page.items.map(toRow))
    component.setData({ rows, page: page.page, total: page.total,
      done: rows.length >= page.total || !page.items.length, ...extra(page) })
  } catch (error) {
    component.setData({ failed: true })  // the request module has shown why
  } finally {
    component.setData({ loading: false })
  }
}

module.exports = { reset, loadMore }
