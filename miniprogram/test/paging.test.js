const test = require('node:test')
const assert = require('node:assert/strict')
const paging = require('../utils/paging')

function fakeComponent() {
  return { data: { rows: ['old'], page: 3, total: 9, loading: false, done: true, failed: true },
    setData(values) { Object.assign(this.data, values) } }
}

test('a reset list loads its first page and is done when every row is shown', async () => {
  const component = fakeComponent()
  paging.reset(component)
  const asked = []
  await paging.loadMore(component, async (number) => { asked.push(number); return { items: [1, 2], page: 1, total: 2 } },
    (item) => item * 10)
  assert.deepEqual(asked, [1])
  assert.deepEqual(component.data.rows, [10, 20])
  assert.equal(component.data.done, true)
  await paging.loadMore(component, async () => { throw new Error('must not load past the last page') }, (x) => x)
})

test('a second load while one runs asks nothing, and a failed load is marked failed', async () => {
  const component = fakeComponent()
  paging.reset(component)
  let release
  const first = paging.loadMore(component, () => new Promise((resolve) => { release = resolve }), (x) => x)
  await paging.loadMore(component, async () => { throw new Error('overlapping load') }, (x) => x)
  release({ items: ['a'], page: 1, total: 3, unread: 2 })
  await first
  assert.deepEqual(component.data.rows, ['a'])
  await paging.loadMore(component, async () => { throw new Error('offline') }, (x) => x)
  assert.equal(component.data.failed, true)
  assert.equal(component.data.loading, false)
  assert.deepEqual(component.data.rows, ['a'])
})

test('extra data is read from the page', async () => {
  const component = fakeComponent()
  paging.reset(component)
  await paging.loadMore(component, async () => ({ items: ['m'], page: 1, total: 5, unread: 4 }), (x) => x,
    (page) => ({ unread: page.unread }))
  assert.equal(component.data.unread, 4)
  assert.equal(component.data.done, false)
})

test('loading older rows asks for those before the last one shown and is done when none remain past them', async () => {
  const component = fakeComponent()
  paging.reset(component)
  const asked = []
  const fetch = async (last) => {
    asked.push(last && last.id)
    return last ? { items: [{ id: 2 }], page: 1, total: 1 } : { items: [{ id: 9 }, { id: 4 }], page: 1, total: 3 }
  }
  await paging.loadOlder(component, fetch, (item) => item)
  assert.equal(component.data.done, false)
  assert.equal(component.data.total, 3)
  await paging.loadOlder(component, fetch, (item) => item)
  assert.deepEqual(asked, [undefined, 4])
  assert.deepEqual(component.data.rows.map((row) => row.id), [9, 4, 2])
  assert.equal(component.data.done, true, 'the page held every older row: nothing after it')
  assert.equal(component.data.page, 2)
  await paging.loadOlder(component, async () => { throw new Error('must not load past the oldest row') }, (x) => x)
})

test('a load still running when the list is reset is dropped, and the reset list loads at once', async () => {
  const component = fakeComponent()
  paging.reset(component)
  let release
  const stale = paging.loadMore(component, () => new Promise((resolve) => { release = resolve }), (x) => x)
  paging.reset(component) // another tab chosen while the first page is on its way
  await paging.loadMore(component, async (number) => ({ items: [`new-${number}`], page: 1, total: 1 }), (x) => x)
  assert.deepEqual(component.data.rows, ['new-1'], 'the reset list does not wait for the dropped load')
  release({ items: ['old'], page: 1, total: 5 })
  await stale
  assert.deepEqual(component.data.rows, ['new-1'], "the earlier list's rows are not appended")
  assert.equal(component.data.total, 1)
  assert.equal(component.data.done, true)
  assert.equal(component.data.loading, false)
})

test('a load that fails after a reset leaves the reset list alone', async () => {
  const component = fakeComponent()
  paging.reset(component)
  let refuse
  const stale = paging.loadOlder(component, () => new Promise((resolve, reject) => { refuse = reject }), (x) => x)
  paging.reset(component)
  let release
  const fresh = paging.loadOlder(component, () => new Promise((resolve) => { release = resolve }), (x) => x)
  refuse(new Error('offline'))
  await stale
  assert.equal(component.data.failed, false)
  assert.equal(component.data.loading, true, 'the reset list is still loading')
  release({ items: [{ id: 3 }], page: 1, total: 1 })
  await fresh
  assert.deepEqual(component.data.rows, [{ id: 3 }])
  assert.equal(component.data.loading, false)
})
