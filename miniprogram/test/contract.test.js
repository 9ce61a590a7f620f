/**
 * The client against the real API: the mini-program's own modules (request, auth, checkin, views) run in
 * Node with a fetch-backed wx.request, against the Flask service started here on a fresh SQLite database
 * with the demo city. Walks sign-in → bind → /me → activities and sign-up → check-in → self-report →
 * a report sent back for more information and resubmitted → photo evidence → 积分超市 (catalogue, order, replay,
 * my orders, cancel) → ledger → leaderboard → 业务之星 / 流动红旗 → notifications (consent, a decision in the
 * inbox, mark read, another member's message) → sign-out (the server revokes the refresh token), and checks the
 * shapes the pages render.
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const test = require('node:test')
const assert = require('node:assert/strict')
const { startService } = require('./helpers/live-service')
const { nodeWx, pngBytes } = require('./helpers/node-wx')

const request = require('../utils/request')
const auth = require('../utils/auth')
const session = require('../utils/session')
const checkin = require('../utils/checkin')
const views = require('../utils/views')
const periods = require('../utils/periods')
const evidence = require('../utils/evidence')
const market = require('../utils/market')
const notifications = require('../utils/notifications')

const VENUE = { lat: 35.4154, lng: 116.5872, radius_m: 200 }

/** The organizer's side, outside the client: a console user's token, straight over fetch. */
async function organizer(api, accounts) {
  const admin = accounts.accounts.find((account) => account.role === 'admin')
  const call = async (path, { method = 'GET', body, token } = {}) => {
    const response = await fetch(`${api}/api/v1${path}`, { method, body: body && JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) } })
    const envelope = await response.json()
    assert.equal(envelope.code, 'ok', `${method} ${path}: ${envelope.message}`)
    return envelope.data
  }
  const { access_token: token } = await call('/auth/login', { method: 'POST',
    body: { username: admin.username, password: admin.password } })
  return {
    publishActivity: (communityId) => call('/activities', { method: 'POST', token, body: {
      community_id: communityId, title: '契约测试：楼道清理', item_code: 'member.activity_hour',
      starts_at: new Date(Date.now() + 10 * 60000).toISOString(), ends_at: new Date(Date.now() + 130 * 60000).toISOString(),
      location: VENUE, capacity: 30 } }),
    checkinCode: (activityId) => call(`/activities/${activityId}/checkin-code`, { token }),
    cancelActivity: (activityId) => call(`/activities/${activityId}/cancel`, { method: 'POST', token,
      body: { reason: '契约测试：场地临时征用' } }),
    approve: (recordId) => call(`/approvals/record:${recordId}/approve`, { method: 'POST', token,
      body: { comment: '契约测试：已核实' } }),
    requestInfo: (recordId, comment) => call(`/approvals/record:${recordId}/request-info`, { method: 'POST', token,
      body: { comment } }),
  }
}

test('the mini-program client walks the member journey against the live API', { timeout: 300000 }, async (t) => {
  const service = await startService()
  t.after(service.stop)
  const wx = nodeWx({ apiBase: service.api, wechatBase: service.wechat, openid: 'contract-new-member' })
  globalThis.wx = wx
  const boss = await organizer(service.api, service.accounts)

  const signedIn = await auth.signIn({ showError: false })
  assert.equal(signedIn.needs_binding, true, 'a new WeChat user has to bind')
  assert.equal(auth.isSignedIn(), false)
  await assert.rejects(request.get('/me', null, { showError: false }), (error) => error.code === 'binding_required')

  const { name, phone } = service.accounts.binding_example
  const bound = await auth.bind(name, phone, { showError: false })
  assert.equal(bound.member.name, name)
  assert.match(bound.member.phone, /^\d{3}\*{4}\d{4}$/, 'the phone comes back masked')
  assert.ok(auth.isSignedIn())

  const me = await request.get('/me', null, { showError: false })
  const home = views.home(me)
  assert.equal(home.name, name)
  assert.deepEqual(home.cards.map((card) => card.key), ['month', 'quarter', 'year'])
  for (const figure of ['month', 'quarter', 'year', 'standing', 'redeemable']) {
    assert.equal(typeof me.points[figure], 'number', figure)
  }
  assert.equal(typeof me.points.pending, 'number')
  assert.ok('points' in me.points.expiring && 'on' in me.points.expiring)
  assert.ok(me.ranks.quarter && me.ranks.standing && Array.isArray(me.ranks.quarter.ranks))
  assert.equal(me.ranks.quarter.period, periods.quarterKey(), 'the client and the server agree on the quarter')

  await t.test('a refused access token is refreshed once and the request goes through', async () => {
    wx.setStorageSync(session.KEY, { ...session.read(), access_token: 'not-a-token' })
    const again = await request.get('/me', null, { showError: false })
    assert.equal(again.member.id, me.member.id)
    assert.notEqual(session.read().access_token, 'not-a-token')
  })

  await t.test('a refresh whose answer is lost is sent again with the same token and the session goes on', async () => {
    wx.setStorageSync(session.KEY, { ...session.read(), access_token: 'not-a-token' })
    const { refresh_token: before } = session.read()
    const send = wx.request
    let lost = 0
    wx.request = (options) => {
      if (!options.url.endsWith('/auth/refresh') || lost > 0) return send(options)
      lost += 1 // the server rotates the token, the phone never hears of it
      return send({ ...options, success: () => options.fail({ errMsg: 'request:fail timeout' }) })
    }
    try {
      const again = await request.get('/me', null, { showError: false })
      assert.equal(again.member.id, me.member.id)
    } finally {
      wx.request = send
    }
    assert.equal(lost, 1)
    assert.notEqual(session.read().refresh_token, before)
    assert.equal((await request.get('/me', null, { showError: false })).member.id, me.member.id)
  })

  const activity = await boss.publishActivity(me.member.community.id)
  await t.test('my community lists the new activity, and I sign up and withdraw', async () => {
    const page = await request.get('/activities', { community_id: me.member.community.id,
      from: new Date().toISOString(), page_size: 50 }, { showError: false })
    const row = page.items.map((item) => views.activityRow(item, VENUE, {})).find((item) => item.id === activity.id)
    assert.ok(row, 'the activity is listed')
    assert.equal(row.distance, '0 米')
    assert.equal(row.signedUp, false)
    const signedUp = async () => {
      const listed = await request.get('/activities', { community_id: me.member.community.id,
        from: new Date().toISOString(), page_size: 50 }, { showError: false })
      const item = listed.items.find((each) => each.id === activity.id)
      const detail = await request.get(`/activities/${activity.id}`, {}, { showError: false })
      assert.equal(detail.signed_up, item.signed_up, 'the detail says what the list says')
      return views.activityRow(item, VENUE, {}).signedUp // nothing remembered: the server's signed_up alone
    }
    assert.equal((await request.post(`/activities/${activity.id}/signups`, {}, { showError: false })).status, 'signed_up')
    assert.equal(await signedUp(), true, 'listed as 已报名 from the server')
    await assert.rejects(request.post(`/activities/${activity.id}/signups`, {}, { showError: false }),
      (error) => error.code === 'already_signed_up' && error.status === 409)
    await request.del(`/activities/${activity.id}/signups`, { showError: false })
    assert.equal(await signedUp(), false, 'withdrawn')
    await request.post(`/activities/${activity.id}/signups`, {}, { showError: false })
    assert.equal(await signedUp(), true)
  })

  await t.test('a cancelled activity is listed as cancelled and refuses sign-ups with its code', async () => {
    const called = await boss.publishActivity(me.member.community.id)
    await request.post(`/activities/${called.id}/signups`, {}, { showError: false })
    await boss.cancelActivity(called.id)
    const page = await request.get('/activities', { community_id: me.member.community.id,
      from: new Date().toISOString(), page_size: 50 }, { showError: false })
    const row = page.items.map((item) => views.activityRow(item, VENUE, {})).find((item) => item.id === called.id)
    assert.equal(row.cancelled, true)
    await assert.rejects(request.post(`/activities/${called.id}/signups`, {}, { showError: false }),
      (error) => error.code === 'activity_cancelled' && error.status === 409)
  })

  await t.test('check-in: refused outside the geofence with the distance, then accepted on site, then refused twice, naming it', async () => {
    wx.phone.scanned = (await boss.checkinCode(activity.id)).token
    const code = await checkin.scan()
    assert.equal(code.activityId, activity.id, 'the activity id is read from the rotating token')
    wx.phone.location = { lat: VENUE.lat + 0.01, lng: VENUE.lng }
    await assert.rejects(checkin.checkIn(code, await checkin.locate()),
      (error) => error.code === 'outside_geofence' && /米/.test(error.message))
    await assert.rejects(checkin.checkIn({ ...code, token: code.token.slice(0, -1) + (code.token.endsWith('a') ? 'b' : 'a') },
      await checkin.locate()), (error) => error.code === 'checkin_token_invalid')
    wx.phone.location = { lat: VENUE.lat, lng: VENUE.lng }
    const fix = await checkin.locate()
    const key = request.newIdempotencyKey()
    const done = await checkin.checkIn(code, fix, { idempotencyKey: key })
    assert.equal(done.status, 'checked_in')
    assert.equal(checkin.successMessage('in', done).title, '签到成功')
    const replay = await checkin.checkIn(code, fix, { idempotencyKey: key })
    assert.equal(replay.checkin_id, done.checkin_id, 'the same key gives the same check-in')
    await assert.rejects(checkin.checkIn(code, fix), (error) => error.code === 'already_checked_in')
    assert.equal(checkin.rememberedCheckins()[String(activity.id)].checkin_id, done.checkin_id)
    wx.removeStorageSync(checkin.CHECKINS_KEY) // the app reinstalled, or another phone: nothing remembered
    await assert.rejects(checkin.checkIn(code, fix),
      (error) => error.code === 'already_checked_in' && error.data.checkin_id === done.checkin_id)
    assert.equal(checkin.rememberedCheckins()[String(activity.id)].checkin_id, done.checkin_id,
      'the repeated scan told this phone which check-in to check out')
  })

  await t.test('a self-report with evidence is filed once per key and shows as pending', async () => {
    const items = views.reportableItems(await request.get('/policy', null, { showError: false }))
    const item = items.find((candidate) => candidate.hours)
    assert.ok(item, 'an hourly item is offered')
    const body = { item_code: item.code, occurred_at: new Date(Date.now() - 3 * 3600000).toISOString(),
      hours: 2, description: '为独居老人代购药品', evidence: ['https://img.example.cn/evidence/1.jpg'] }
    const key = request.newIdempotencyKey()
    const record = await request.post('/records', body, { idempotencyKey: key, showError: false })
    assert.equal(record.status, 'pending')
    assert.equal((await request.post('/records', body, { idempotencyKey: key, showError: false })).id, record.id)
    await assert.rejects(request.post('/records', { ...body, evidence: ['http://plain.example.cn/x.jpg'] },
      { showError: false }), (error) => error.code === 'validation_failed' && 'evidence' in error.data.errors)
    const mine = await request.get('/records', { page_size: 20 }, { showError: false })
    const row = views.recordRow(mine.items.find((candidate) => candidate.id === record.id))
    assert.equal(row.status, '待审核')
    const after = await request.get('/me', null, { showError: false })
    assert.ok(after.points.pending >= 1, 'the pending count includes the report')
  })

  await t.test('a report sent back for more information is resubmitted once per key with new text and evidence', async () => {
    const item = views.reportableItems(await request.get('/policy', null, { showError: false })).find((c) => c.hours)
    const record = await request.post('/records', { item_code: item.code, hours: 1, description: '契约测试：补充材料',
      occurred_at: new Date(Date.now() - 3600000).toISOString(), evidence: ['https://img.example.cn/evidence/2.jpg'] },
    { idempotencyKey: request.newIdempotencyKey(), showError: false })
    await boss.requestInfo(record.id, '请补充服务对象签字')
    const listed = await request.get('/records', { page_size: 20 }, { showError: false })
    const row = views.recordRow(listed.items.find((candidate) => candidate.id === record.id))
    assert.equal(row.status, '需补充材料')
    assert.equal(row.canResubmit, true)
    assert.equal(row.comment, '请补充服务对象签字')
    assert.deepEqual(row.evidence, ['https://img.example.cn/evidence/2.jpg'])
    const body = { description: `${row.description}，附签字`, evidence: row.evidence.concat('https://img.example.cn/evidence/3.jpg') }
    const key = request.newIdempotencyKey()
    const resubmitted = await request.post(`/records/${record.id}/resubmit`, body, { idempotencyKey: key, showError: false })
    assert.equal(resubmitted.status, 'pending')
    assert.deepEqual(resubmitted.evidence, body.evidence)
    const replayed = await request.post(`/records/${record.id}/resubmit`, body, { idempotencyKey: key, showError: false })
    assert.deepEqual(replayed, resubmitted, 'sent again after a lost answer: the first answer, not a refusal')
    await assert.rejects(request.post(`/records/${record.id}/resubmit`, body,
      { idempotencyKey: request.newIdempotencyKey(), showError: false }),
    (error) => error.code === 'invalid_transition' && error.status === 409)
    const after = await request.get('/records', { page_size: 20 }, { showError: false })
    assert.equal(views.recordRow(after.items.find((candidate) => candidate.id === record.id)).canResubmit, false)
  })

  await t.test('a photo is uploaded to the API and its link filed as evidence; a file that is not a picture is refused', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'points-photo-'))
    t.after(() => fs.rmSync(folder, { recursive: true, force: true }))
    const photo = path.join(folder, 'evidence.png')
    fs.writeFileSync(photo, pngBytes())
    wx.phone.photos = [photo]
    const [chosen] = await evidence.choosePhotos(1)
    const link = await evidence.uploadPhoto(chosen)
    assert.ok(evidence.isUploadedPhoto(link), link)
    const served = await fetch(link)
    assert.equal(served.status, 200)
    assert.equal(served.headers.get('content-type'), 'image/png')
    assert.equal(served.headers.get('x-content-type-options'), 'nosniff')
    const items = views.reportableItems(await request.get('/policy', null, { showError: false }))
    const item = items.find((candidate) => candidate.hours)
    const record = await request.post('/records', { item_code: item.code, hours: 1, description: '照片佐证：楼道清理',
      occurred_at: new Date(Date.now() - 3600000).toISOString(), evidence: [link] },
    { idempotencyKey: request.newIdempotencyKey(), showError: false })
    assert.deepEqual(record.evidence, [link])
    const text = path.join(folder, 'not-a-photo.png')
    fs.writeFileSync(text, 'plain text with a picture name')
    await assert.rejects(evidence.uploadPhoto(text), (error) => error.code === 'picture_invalid' && error.status === 422)
  })

  await t.test('积分超市: the seeded item is affordable, ordered once per key, listed with its code, and cancelled', async () => {
    const seeded = service.accounts.market_item
    const page = await market.listItems(1, { showError: false })
    const row = page.items.map(market.itemView).find((item) => item.id === seeded.id)
    assert.ok(row, 'the member sees his community\'s item')
    assert.equal(row.affordable, true)
    assert.equal(row.price, '2')
    assert.match(row.picture, /^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/shop\/pictures\//)
    assert.equal((await fetch(row.picture)).status, 200, 'the picture link the page shows is served')
    assert.equal(market.itemView(await market.getItem(seeded.id, { showError: false })).maxQuantity, 3)
    const before = (await request.get('/me', null, { showError: false })).points
    const key = request.newIdempotencyKey()
    const order = await market.placeOrder(seeded.id, 2, key, { showError: false })
    assert.match(order.pickup_code, /^[2-9A-Z]{6}$/)
    assert.equal((await market.placeOrder(seeded.id, 2, key, { showError: false })).id, order.id, 'the same key is one order')
    await assert.rejects(market.placeOrder(seeded.id, 2, request.newIdempotencyKey(), { showError: false }),
      (error) => error.code === 'limit_reached' && error.status === 409)
    const after = (await request.get('/me', null, { showError: false })).points
    assert.equal(after.open_orders, before.open_orders + 1)
    assert.equal(after.redeemable, before.redeemable - 4)
    const open = await market.myOrders('placed', 1, { showError: false })
    const mine = market.orderView(open.items.find((candidate) => candidate.id === order.id))
    assert.equal(mine.pickupCode, order.pickup_code)
    assert.equal(mine.canCancel, true)
    assert.equal((await market.cancelOrder(order.id, { showError: false })).state, 'cancelled')
    await assert.rejects(market.cancelOrder(order.id, { showError: false }), (error) => error.code === 'order_not_open')
    const refunded = (await request.get('/me', null, { showError: false })).points
    assert.equal(refunded.redeemable, before.redeemable)
    assert.equal(refunded.open_orders, before.open_orders)
  })

  await t.test('my ledger pages render with reasons', async () => {
    const page = await request.get(`/members/${me.member.id}/ledger`, { period: periods.yearKey(), page: 1,
      page_size: 20 }, { showError: false })
    assert.equal(typeof page.total, 'number')
    for (const entry of page.items) {
      const row = views.ledgerRow(entry)
      assert.ok(row.item && row.at && /^[+-]?\d/.test(row.points))
    }
  })

  await t.test('leaderboards answer for every scope and period the page offers, with me', async () => {
    const scopes = views.boardScopes(me)
    assert.ok(scopes.length >= 2, 'all plus my own scopes')
    for (const { scope } of scopes) {
      for (const { key } of periods.boardPeriods()) {
        const board = await request.get('/leaderboards', { subject: 'member', scope, period: key, page_size: 10 },
          { showError: false })
        const view = views.leaderboard(board, me.member.id)
        assert.equal(typeof view.total, 'number', `${scope} ${key}`)
        for (const row of view.rows) assert.ok(Number.isInteger(row.rank) && row.name)
      }
    }
    const seeded = await request.get('/leaderboards', { subject: 'member', scope: 'all', period: periods.quarterKey() },
      { showError: false })
    assert.ok(seeded.items.length > 0, 'the demo city has a ranked quarter')
    assert.ok('me' in seeded)
  })

  await t.test('业务之星 and 流动红旗 answer the lists the honors page renders', async () => {
    const stars = await request.get('/stars', { period: periods.previousQuarterKey(), page_size: 100 }, { showError: false })
    assert.ok(Array.isArray(stars.items))
    stars.items.map(views.starRow)
    const policy = await request.get('/policy', null, { showError: false })
    assert.ok(['month', 'quarter'].includes(policy.red_flag.period), 'GET /policy names the red flags\' period kind')
    const kind = views.redFlagPeriodKind(policy)
    assert.equal(kind, policy.red_flag.period)
    for (const period of [periods.previousKey(kind), periods.previousMonthKey(), periods.previousQuarterKey()]) {
      const flags = await request.get('/red-flags', { period }, { showError: false })
      assert.equal(flags.period, period, 'a monthly policy\'s months are answered as well as quarters')
      assert.ok(Array.isArray(flags.items))
      flags.items.map(views.redFlagRow)
    }
  })

  await t.test('notifications: templates listed, consent granted, a decision lands in the inbox and is read', async () => {
    const templates = await notifications.loadTemplates()
    assert.ok(templates.length >= 1 && templates.every((tmpl) => tmpl.key && tmpl.title && tmpl.template_id))
    const asked = templates.find((tmpl) => tmpl.key === 'record_decided')
    assert.equal(asked.granted, 0, 'nothing granted yet')
    wx.requestSubscribeMessage = ({ tmplIds, success }) => success(Object.fromEntries(
      [['errMsg', 'requestSubscribeMessage:ok'], ...tmplIds.map((id) => [id, 'accept'])]))
    assert.deepEqual(await notifications.requestConsent(['record_decided']), ['record_decided'])
    const listed = (await notifications.loadTemplates()).find((tmpl) => tmpl.key === 'record_decided')
    assert.equal(listed.granted, 1, 'the server counts one send per acceptance')
    await assert.rejects(request.post('/me/subscriptions', { template_keys: ['no_such_template'] }, { showError: false }),
      (error) => error.code === 'template_unknown' && error.status === 422)

    const before = (await request.get('/me', null, { showError: false })).points.unread_messages
    assert.equal(typeof before, 'number')
    const item = views.reportableItems(await request.get('/policy', null, { showError: false })).find((c) => c.hours)
    const record = await request.post('/records', { item_code: item.code, hours: 1, description: '契约测试：通知',
      occurred_at: new Date(Date.now() - 3600000).toISOString() },
    { idempotencyKey: request.newIdempotencyKey(), showError: false })
    await boss.approve(record.id)
    const unread = await notifications.listMessages({ unreadOnly: true }, { showError: false })
    assert.equal(unread.unread, before + 1)
    const [newest] = unread.items
    assert.equal(newest.event, 'record_approved')
    const older = await notifications.listMessages({ before: newest.id, unreadOnly: true }, { showError: false })
    assert.ok(older.items.every((message) => message.id < newest.id), 'before: only older messages')
    assert.equal(older.total, unread.total - 1)
    const view = notifications.messageView(newest)
    assert.equal(view.unread, true)
    const pages = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'app.json'), 'utf8')).pages
    assert.ok(pages.includes(view.link.split('?')[0].slice(1)), `the message links to a page of app.json: ${newest.link}`)
    assert.equal((await request.get('/me', null, { showError: false })).points.unread_messages, before + 1)
    assert.ok((await notifications.markRead(newest.id, { showError: false })).read_at)
    assert.equal((await notifications.listMessages({ unreadOnly: true }, { showError: false })).unread, before)
    assert.equal((await request.get('/me', null, { showError: false })).points.unread_messages, before)

    const other = nodeWx({ apiBase: service.api, wechatBase: service.wechat,
      openid: service.accounts.wechat_members[0].openid })
    globalThis.wx = other
    try {
      assert.equal((await auth.signIn({ showError: false })).needs_binding, false, 'a roster member already linked')
      await assert.rejects(notifications.markRead(newest.id, { showError: false }),
        (error) => error.code === 'message_not_found' && error.status === 404)
    } finally {
      globalThis.wx = wx
    }
  })

  await t.test('sign-out revokes the refresh token on the server and forgets the tokens on this phone', async () => {
    const { refresh_token: refreshToken } = session.read()
    assert.equal(await auth.signOut(), true, 'the server revoked the session')
    assert.equal(auth.isSignedIn(), false)
    await assert.rejects(request.get('/me', null, { showError: false }), (error) => error.status === 401)
    const refreshed = await fetch(`${service.api}/api/v1/auth/refresh`, { method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${refreshToken}` }, body: '{}' })
    assert.equal(refreshed.status, 401, 'the old refresh token is refused')
  })
})
