/**
 * The 积分超市, my orders, photo evidence, subscribe-message consent and the inbox, rendered by j-component with
 * `wx.*` mocked at the boundary and the API answering as docs/market.md and the notifications contract say.
 */
const test = require('node:test')
const assert = require('node:assert/strict')
const { renderPage, until, text, all } = require('./helpers/simulate')
const { installWx, ok, failure, signedIn, route } = require('./helpers/wx')
const request = require('../utils/request')
const notifications = require('../utils/notifications')

request.setDelay(() => Promise.resolve())

const ME = { member: { id: 58, name: '闫思振', phone: '175****1759' },
  points: { month: 1, quarter: 8, year: 20, standing: 15, redeemable: 12, pending: 0, open_orders: 1,
    unread_messages: 3, expiring: { points: 0, on: null } }, ranks: {} }
const BAG = { id: 3, name: '环保购物袋', description: '可重复使用', region_name: '南池社区',
  picture_url: '/api/v1/shop/pictures/abcdefghijklmnopqrstuvwx.png', price: 5, stock: 4, limit_per_member: 2,
  limit_period: 'month', visible_until: null, affordable: true, limit_left: 2 }
const RICE = { ...BAG, id: 4, name: '电饭煲', picture_url: null, price: 100, stock: null, limit_per_member: null,
  limit_left: null, affordable: false }
const ORDER = { id: 11, item_id: 3, item_name: '环保购物袋', member_id: 58, member_name: '闫思振',
  community_name: '南池社区', quantity: 2, points: 10, state: 'placed', pickup_code: '7KX2QD',
  placed_at: '2026-12-06T02:00:00+00:00', pickup_deadline: '2026-12-20T02:00:00+00:00', closed_at: null,
  close_reason: '' }
const TEMPLATES = { templates: [
  { key: 'record_decided', template_id: 'tmpl-record', title: '审核结果通知', granted: 0 },
  { key: 'order_ready', template_id: 'tmpl-order', title: '待取货提醒', granted: 2 },
  { key: 'order_closed', template_id: 'tmpl-order-closed', title: '订单取消通知', granted: 0 },
  { key: 'activity_reminder', template_id: 'tmpl-activity', title: '活动开始提醒', granted: 0 }] }

function api(routes) {
  return (options) => {
    const { method, path } = route(options)
    const answer = routes[`${method} ${path}`]
    if (!answer) return failure(404, 'not_found', '资源不存在')
    return typeof answer === 'function' ? answer(options) : answer
  }
}

function sent(wx, method, path) {
  return wx.calls.requests.filter((r) => r.method === method && route(r).path === path)
}

test.beforeEach(() => notifications.resetForTests())

test('the market lists what I can afford with price, stock, limit and picture, and my balance', async () => {
  installWx({ storage: signedIn(), handle: api({ 'GET /me': ok(ME),
    'GET /shop/items': ok({ items: [BAG, RICE], total: 2, page: 1, page_size: 50 }) }) })
  const page = renderPage('market')
  await page.instance.onShow()
  assert.equal(text(page, '.balance'), '12')
  assert.match(text(page, '.open-orders'), /1 单待取货/)
  const items = all(page, '.item')
  assert.equal(items.length, 2)
  assert.match(items[0].dom.textContent, /环保购物袋[\s\S]*5[\s\S]*积分[\s\S]*剩 4 件[\s\S]*每月限兑 2 件，还可兑 2 件[\s\S]*可兑换/)
  assert.match(items[1].dom.textContent, /不限量[\s\S]*积分不足/)
  assert.equal(all(page, '.item.unaffordable').length, 1)
  assert.equal(page.data.items[0].picture, 'http://api.test/api/v1/shop/pictures/abcdefghijklmnopqrstuvwx.png')
  assert.ok(page.querySelector('.no-picture'), 'an item without a picture says so')
})

test('ordering confirms the points, sends one Idempotency-Key, and shows the pick-up code large', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({ 'GET /shop/items/3': ok(BAG),
    'GET /me/subscriptions': failure(404, 'not_found', '资源不存在'),
    'POST /shop/orders': ok(ORDER, 201) }) })
  const page = renderPage('market-item')
  await page.instance.onLoad({ id: '3' })
  const firstKey = page.data.key
  page.instance.more()
  page.instance.more()
  page.instance.more()
  assert.equal(page.data.quantity, 2, 'bounded by the limit left')
  assert.equal(text(page, '.total'), '10')
  assert.notEqual(page.data.key, firstKey, 'another quantity is another order: a new key')
  await page.instance.confirmOrder()
  assert.match(wx.calls.modals[0].content, /10 公益积分兑换“环保购物袋”2 件/)
  const [order] = sent(wx, 'POST', '/shop/orders')
  assert.deepEqual(order.data, { item_id: 3, quantity: 2 })
  assert.match(order.header['Idempotency-Key'], /^[A-Za-z0-9_-]{8,64}$/)
  assert.equal(text(page, '.pickup-code'), '7KX2QD')
  assert.match(text(page, '.done .hint'), /2026-12-20 前到南池社区/)
  assert.equal(wx.calls.subscribes.length, 0, 'no templates from the server: no consent asked')
})

test('an order lost to the network is retried with the same key, so it is one order', async () => {
  let attempts = 0
  const wx = installWx({ storage: signedIn(), handle: api({ 'GET /shop/items/3': ok(BAG),
    'POST /shop/orders': () => (++attempts === 1 ? { fail: { errMsg: 'request:fail timeout' } } : ok(ORDER, 201)) }) })
  const page = renderPage('market-item')
  await page.instance.onLoad({ id: '3' })
  await page.instance.order()
  const keys = sent(wx, 'POST', '/shop/orders').map((r) => r.header['Idempotency-Key'])
  assert.equal(keys.length, 2)
  assert.equal(keys[0], keys[1])
  assert.equal(text(page, '.pickup-code'), '7KX2QD')
})

const MARKET_REFUSALS = [
  [422, 'insufficient_points', '公益积分余额不足', '公益积分不足', /志愿服务/],
  [409, 'out_of_stock', '该商品库存不足', '库存不足', /减少数量/],
  [409, 'limit_reached', '已达到该商品的每人兑换限额', '已达限购数量', /下一个周期/],
  [409, 'monthly_ceiling_reached', '本月兑换积分已达上限', '本月兑换已达上限', /下个月 1 日/],
  [409, 'item_unavailable', '该商品已下架或不在兑换时间内', '商品已下架', /其他商品/],
  [404, 'item_not_found', '该商品不存在', '未找到商品', /刷新列表/],
]

for (const [status, code, message, title, advice] of MARKET_REFUSALS) {
  test(`an order refused with ${code} is explained with what to do next, and no code is shown`, async () => {
    const wx = installWx({ storage: signedIn(), handle: api({ 'GET /shop/items/3': ok(BAG),
      'POST /shop/orders': failure(status, code, message) }) })
    const page = renderPage('market-item')
    await page.instance.onLoad({ id: '3' })
    await page.instance.order()
    const dialog = wx.calls.modals.at(-1)
    assert.equal(dialog.title, title)
    assert.match(dialog.content, advice)
    assert.ok(dialog.content.startsWith(message))
    assert.ok(!page.querySelector('.pickup-code'))
  })
}

test('after an order the member is offered the order notifications only and the accepted keys are posted', async () => {
  const wx = installWx({ storage: signedIn(),
    answers: { requestSubscribeMessage: { errMsg: 'requestSubscribeMessage:ok', 'tmpl-order-closed': 'reject', 'tmpl-order': 'accept' } },
    handle: api({ 'GET /shop/items/3': ok(BAG), 'GET /me/subscriptions': ok(TEMPLATES),
      'POST /shop/orders': ok(ORDER, 201), 'POST /me/subscriptions': ok({ granted: { order_ready: 2 } }, 201) }) })
  const page = renderPage('market-item')
  await page.instance.onLoad({ id: '3' })
  await until(() => notifications.canOffer())
  await page.instance.order()
  assert.equal(wx.calls.modals.at(-1).confirmText, '接收通知')
  assert.deepEqual(wx.calls.subscribes[0].tmplIds, ['tmpl-order-closed', 'tmpl-order'], 'not yet granted first')
  assert.deepEqual(sent(wx, 'POST', '/me/subscriptions')[0].data, { template_keys: ['order_ready'] })
})

test('declining the consent dialog asks WeChat nothing and posts nothing', async () => {
  const wx = installWx({ storage: signedIn(), answers: { modalConfirm: false },
    handle: api({ 'GET /me/subscriptions': ok(TEMPLATES) }) })
  await notifications.loadTemplates()
  assert.deepEqual(await notifications.offerConsent({ title: '已提交', content: '…' }), [])
  assert.equal(wx.calls.subscribes.length, 0)
  assert.equal(sent(wx, 'POST', '/me/subscriptions').length, 0)
})

test('my orders show open ones first with the pick-up code large, and cancelling refunds after a confirmation', async () => {
  let cancelled = false
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me/orders': (options) => ok({ items: cancelled && route(options).query.state === 'placed' ? []
      : [ORDER], total: cancelled ? 0 : 1, page: 1, page_size: 20 }),
    'POST /shop/orders/11/cancel': () => { cancelled = true; return ok({ ...ORDER, state: 'cancelled', pickup_code: null }) },
  }) })
  const page = renderPage('orders')
  await page.instance.onShow()
  assert.equal(route(wx.calls.requests[0]).query.state, 'placed')
  assert.equal(text(page, '.pickup-code'), '7KX2QD')
  assert.match(text(page, '.order .state'), /待取货/)
  await page.instance.cancel({ currentTarget: { dataset: { id: 11 } } })
  assert.match(wx.calls.modals[0].content, /10 公益积分将退回/)
  assert.equal(sent(wx, 'POST', '/shop/orders/11/cancel').length, 1)
  assert.equal(wx.calls.toasts.at(-1).title, '已取消，积分已退回')
  assert.ok(page.querySelector('.no-orders'))
  await page.instance.chooseState({ currentTarget: { dataset: { key: '' } } })
  assert.equal(route(wx.calls.requests.at(-1)).query.state, undefined, '全部 sends no state')
})

test('switching tabs while a page of orders loads shows the chosen tab only, not the rows of the earlier tab', async () => {
  const PICKED = { ...ORDER, id: 12, item_name: '电饭煲', state: 'picked_up', pickup_code: null }
  let release = null
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me/orders': (options) => (route(options).query.state === 'placed'
      ? new Promise((resolve) => { release = () => resolve(ok({ items: [ORDER], total: 1, page: 1, page_size: 20 })) })
      : ok({ items: [PICKED], total: 1, page: 1, page_size: 20 })),
  }) })
  const page = renderPage('orders')
  const first = page.instance.onShow() // 待取货 on its way on a slow network
  await until(() => release)
  await page.instance.chooseState({ currentTarget: { dataset: { key: '' } } }) // the member taps 全部 meanwhile
  assert.equal(sent(wx, 'GET', '/me/orders').length, 2, '全部 is asked at once')
  release()
  await first
  assert.deepEqual(page.data.rows.map((row) => row.id), [12])
  assert.equal(all(page, '.order').length, 1)
  assert.equal(page.data.loading, false)
})

test('cancelling an order already picked up is explained as order_not_open', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me/orders': ok({ items: [ORDER], total: 1, page: 1, page_size: 20 }),
    'POST /shop/orders/11/cancel': failure(409, 'order_not_open', '该订单已取货、取消或过期，不能再操作') }) })
  const page = renderPage('orders')
  await page.instance.onShow()
  await page.instance.cancel({ currentTarget: { dataset: { id: 11 } } })
  assert.equal(wx.calls.modals.at(-1).title, '订单已结束')
})

test('home and mine count my open orders and unread messages from GET /me alone', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({ 'GET /me': ok(ME) }) })
  const home = renderPage('home')
  await home.instance.load()
  assert.match(text(home, '.open-orders'), /1 单待取货/)
  const mine = renderPage('mine')
  await mine.instance.onShow()
  assert.equal(text(mine, '.open-orders'), '1 待取货')
  assert.equal(text(mine, '.unread'), '3')
  assert.equal(sent(wx, 'GET', '/me/messages').length, 0, 'the badge needs no second request')
})

test('a photo is chosen, uploaded to the API, shown as a picture and sent as evidence', async () => {
  const link = 'http://api.test/api/v1/uploads/evidence/AbCdEfGhIjKlMnOpQrStUvWxYz012345.jpg'
  const wx = installWx({ storage: signedIn(),
    answers: { chooseMedia: { tempFiles: [{ tempFilePath: 'wxfile://tmp-1.jpg' }] },
      uploadFile: { statusCode: 201, data: JSON.stringify(ok({ url: link }).data) } },
    handle: api({ 'GET /policy': ok({ items: [{ code: 'member.micro_wish', name: '微心愿', subject: 'member',
      kind: 'award', approval: 'community_admin', unit: 'times' }] }), 'GET /records': ok({ items: [], total: 0 }),
    'GET /me/subscriptions': failure(404, 'not_found', '资源不存在'), 'POST /records': ok({ id: 5, status: 'pending' }, 201) }) })
  const page = renderPage('report')
  page.instance.onLoad()
  await page.instance.onShow()
  await page.instance.addPhotos()
  assert.equal(wx.calls.uploads[0].url, 'http://api.test/api/v1/uploads/evidence')
  assert.equal(wx.calls.uploads[0].filePath, 'wxfile://tmp-1.jpg')
  assert.ok(page.querySelector('.evidence .photo'), 'an uploaded photo is shown as a picture')
  page.instance.onDescription({ detail: { value: '帮助独居老人' } })
  await page.instance.submit()
  assert.deepEqual(sent(wx, 'POST', '/records')[0].data.evidence, [link])
  assert.equal(wx.calls.modals.at(-1).title, '已提交')
  assert.equal(wx.calls.subscribes.length, 0)
})

test('a photo the server refuses is explained and not added', async () => {
  const wx = installWx({ storage: signedIn(),
    answers: { chooseMedia: { tempFiles: [{ tempFilePath: 'wxfile://tmp.gif' }] },
      uploadFile: { statusCode: 422, data: JSON.stringify(failure(422, 'picture_invalid', '图片格式应为 JPEG、PNG 或 WebP',
        { errors: { file: ['图片格式应为 JPEG、PNG 或 WebP'] } }).data) } } })
  const page = renderPage('report')
  await page.instance.addPhotos()
  assert.equal(wx.calls.modals[0].title, '照片无法使用')
  assert.match(wx.calls.modals[0].content, /4 MB/)
  assert.equal(page.data.links.length, 0)
})

test('after a self-report the member may accept the decision notice, and only it; WeChat is asked in the dialog tap', async () => {
  const wx = installWx({ storage: signedIn(),
    answers: { requestSubscribeMessage: { errMsg: 'requestSubscribeMessage:ok', 'tmpl-record': 'accept', 'tmpl-order': 'accept' } },
    handle: api({ 'GET /policy': ok({ items: [{ code: 'member.micro_wish', name: '微心愿', subject: 'member',
      kind: 'award', approval: 'community_admin', unit: 'times' }] }), 'GET /records': ok({ items: [], total: 0 }),
    'GET /me/subscriptions': ok(TEMPLATES), 'POST /records': ok({ id: 5, status: 'pending' }, 201),
    'POST /me/subscriptions': ok({ granted: { record_decided: 1 } }, 201) }) })
  const page = renderPage('report')
  page.instance.onLoad()
  await page.instance.onShow()
  await until(() => notifications.canOffer())
  page.instance.onDescription({ detail: { value: '帮助独居老人' } })
  await page.instance.submit()
  assert.match(wx.calls.modals.at(-1).content, /审核有结果时收到微信通知/)
  assert.deepEqual(wx.calls.subscribes[0].tmplIds, ['tmpl-record'])
  assert.deepEqual(sent(wx, 'POST', '/me/subscriptions')[0].data, { template_keys: ['record_decided'] })
  assert.equal(notifications.cachedTemplates()[0].granted, 1, 'the count the server answered is kept')
})

test('the inbox marks unread messages, counts them, and opening one marks it read and follows its link', async () => {
  const message = (id, read) => ({ id, event: 'record_approved', title: `审核结果${id}`, body: '您的上报已通过',
    created_at: '2026-12-06T02:00:00+00:00', read_at: read ? '2026-12-06T03:00:00+00:00' : null,
    link: id === 1 ? '/pages/report/report' : '' })
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me/messages': (options) => ok(route(options).query.unread === 'true'
      ? { items: [message(1, false)], page: 1, page_size: 20, total: 1, unread: 1 }
      : { items: [message(1, false), message(2, true)], page: 1, page_size: 20, total: 2, unread: 1 }),
    'POST /me/messages/1/read': ok({ id: 1, read_at: '2026-12-06T04:00:00+00:00' }) }) })
  const page = renderPage('messages')
  await page.instance.onShow()
  assert.equal(all(page, '.message').length, 2)
  assert.equal(all(page, '.message.unread').length, 1)
  assert.equal(text(page, '.unread-count'), '（1）')
  assert.equal(text(page, '.message .message-body'), '您的上报已通过')
  await page.instance.open({ currentTarget: { dataset: { id: 1 } } })
  assert.equal(sent(wx, 'POST', '/me/messages/1/read').length, 1)
  assert.equal(all(page, '.message.unread').length, 0)
  assert.ok(!page.querySelector('.unread-count'))
  assert.deepEqual(wx.calls.navigations.at(-1), { kind: 'navigateTo', url: '/pages/report/report' })
  await page.instance.open({ currentTarget: { dataset: { id: 2 } } })
  assert.equal(wx.calls.requests.filter((r) => r.method === 'POST').length, 1, 'a read message is not marked again')
  await page.instance.chooseTab({ currentTarget: { dataset: { unread: 'true' } } })
  assert.deepEqual(route(wx.calls.requests.at(-1)).query, { page_size: '20', unread: 'true' })
})

/** The inbox as the service keeps it: newest first, `unread=true` filters, `before` = older than that id. */
function inboxServer(count) {
  const messages = Array.from({ length: count }, (_, n) => ({ id: n + 1, event: 'record_rejected',
    title: `消息${n + 1}`, body: '', created_at: '2026-12-06T02:00:00+00:00', read_at: null, link: '' }))
  const handle = (options) => {
    const { method, path, query } = route(options)
    if (method === 'POST') {
      const message = messages.find((m) => m.id === Number(path.split('/')[3]))
      message.read_at = '2026-12-06T04:00:00+00:00'
      return ok(message)
    }
    const size = Number(query.page_size || 20)
    const number = Number(query.page || 1)
    const listed = messages.filter((m) => (query.unread !== 'true' || !m.read_at)
      && (!query.before || m.id < Number(query.before))).reverse()
    return ok({ items: listed.slice((number - 1) * size, number * size), page: number, page_size: size,
      total: listed.length, unread: messages.filter((m) => !m.read_at).length })
  }
  const add = () => messages.push({ ...messages[0], id: messages.length + 1, title: '新消息' })
  return { handle, add }
}

const shownIds = (page) => page.data.rows.map((row) => row.id)

test('reading unread messages while paging the 未读 tab loses none: more loads before the last one shown', async () => {
  const server = inboxServer(25)
  const wx = installWx({ storage: signedIn(), handle: server.handle })
  const page = renderPage('messages')
  await page.instance.onShow()
  await page.instance.chooseTab({ currentTarget: { dataset: { unread: 'true' } } })
  assert.equal(page.data.rows.length, 20)
  for (const id of shownIds(page).slice(0, 5)) await page.instance.open({ currentTarget: { dataset: { id } } })
  await page.instance.onReachBottom()
  assert.deepEqual(shownIds(page), Array.from({ length: 25 }, (_, n) => 25 - n))
  assert.deepEqual(route(wx.calls.requests.at(-1)).query, { before: '6', page_size: '20', unread: 'true' })
  assert.equal(page.data.done, true)
  assert.equal(all(page, '.message').length, 25)
})

test('a message arriving between two loads of 全部 is not shown twice', async () => {
  const server = inboxServer(25)
  const wx = installWx({ storage: signedIn(), handle: server.handle })
  const page = renderPage('messages')
  await page.instance.onShow()
  server.add()
  await page.instance.onReachBottom()
  assert.deepEqual(shownIds(page), Array.from({ length: 25 }, (_, n) => 25 - n))
  assert.equal(page.data.done, true)
  const asked = wx.calls.requests.length
  await page.instance.onReachBottom()
  assert.equal(wx.calls.requests.length, asked, 'nothing is loaded after the oldest message')
  await page.instance.onPullDownRefresh()
  assert.equal(shownIds(page)[0], 26, 'a reload starts again from the newest')
})

test('an inbox that cannot be read shows a retry', async () => {
  installWx({ storage: signedIn(), handle: () => failure(503, 'service_unavailable', '服务暂时不可用') })
  const page = renderPage('messages')
  await page.instance.onShow()
  assert.ok(page.querySelector('.retry'))
})

test('opening a message that is no longer mine keeps it listed and still follows its link', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me/messages': ok({ items: [{ id: 7, event: 'order_ready', title: '兑换成功，待取货', body: '',
      created_at: '2026-12-06T02:00:00+00:00', read_at: null, link: '/pages/orders/orders' }],
    page: 1, page_size: 20, total: 1, unread: 1 }),
    'POST /me/messages/7/read': failure(404, 'message_not_found', '消息不存在') }) })
  const page = renderPage('messages')
  await page.instance.onShow()
  await page.instance.open({ currentTarget: { dataset: { id: 7 } } })
  assert.equal(all(page, '.message.unread').length, 1)
  assert.equal(wx.calls.toasts.length + wx.calls.modals.length, 0, 'marking read is quiet')
  assert.deepEqual(wx.calls.navigations.at(-1), { kind: 'navigateTo', url: '/pages/orders/orders' })
})
