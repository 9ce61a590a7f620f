const test = require('node:test')
const assert = require('node:assert/strict')
const { renderPage, until, text, all } = require('./helpers/simulate')
const { installWx, ok, failure, signedIn, route } = require('./helpers/wx')
const request = require('../utils/request')

request.setDelay(() => Promise.resolve())

const TOKEN = `${(42).toString(36)}.${(59000000).toString(36)}.abcdefgh2345`

const ME = {
  user: { id: 1, display_name: '闫思振' },
  member: { id: 58, name: '闫思振', phone: '175****1759', branch: { id: 18, name: '第一党支部' },
    community: { id: 14, name: '南池社区' }, grid: { id: 16, name: '南池二网格' } },
  points: { month: 1, quarter: 8, year: 20.5, standing: 15, redeemable: 12, pending: 2,
    expiring: { points: 3, on: '2027-01-01T00:00:00+08:00' } },
  ranks: {
    quarter: { period: '2026-Q4', on_board: true, points: 8, ranks: [
      { scope: 'grid:16', kind: 'grid', scope_id: 16, label: '网格', rank: 3 },
      { scope: 'all', kind: 'all', scope_id: null, label: '全市', rank: 12 }] },
    standing: { period: 'standing', on_board: true, points: 15, ranks: [
      { scope: 'all', kind: 'all', scope_id: null, label: '全市', rank: 9 }] },
  },
}

function api(routes) {
  return (options) => {
    const { method, path } = route(options)
    const answer = routes[`${method} ${path}`]
    if (!answer) return failure(404, 'not_found', '资源不存在')
    return typeof answer === 'function' ? answer(options) : answer
  }
}

test('home shows the month, quarter and year, the balances, expiring points, pending items and every rank', async () => {
  installWx({ storage: signedIn(), handle: api({ 'GET /me': ok(ME) }) })
  const page = renderPage('home')
  page.instance.onShow()
  await until(() => text(page, '.standing') !== null)
  assert.equal(text(page, '.value-month'), '1')
  assert.equal(text(page, '.value-quarter'), '8')
  assert.equal(text(page, '.value-year'), '20.5')
  assert.equal(text(page, '.redeemable'), '12')
  assert.match(text(page, '.expiring'), /2027-01-01 将过期 3 分/)
  assert.equal(text(page, '.pending-count'), '2 项 ›')
  assert.deepEqual(all(page, '.rank').map((row) => row.dom.textContent.replace(/\s+/g, '')), ['网格第3名', '全市第12名'])
  assert.equal(all(page, '.rank-standing').length, 1)
})

test('home sends a visitor who is not signed in to the sign-in page without calling the API', () => {
  const wx = installWx()
  renderPage('home').instance.onShow()
  assert.deepEqual(wx.calls.navigations, [{ kind: 'reLaunch', url: '/pages/login/login' }])
  assert.equal(wx.calls.requests.length, 0)
})

test('home offers to reload when /me fails', async () => {
  installWx({ storage: signedIn(), handle: () => failure(503, 'service_unavailable', '服务暂时不可用') })
  const page = renderPage('home')
  await page.instance.load()
  assert.equal(text(page, '.error-text'), '加载失败')
})

test('sign-in asks to bind when the server says so, and binding goes home', async () => {
  const wx = installWx({ handle: api({
    'POST /auth/wechat': ok({ access_token: 'w1', refresh_token: 'wr1', member: null, needs_binding: true }),
    'POST /auth/bind': ok({ access_token: 'a2', refresh_token: 'r2', member: ME.member, needs_binding: false }),
  }) })
  const page = renderPage('login')
  await page.instance.signIn()
  assert.deepEqual(wx.calls.requests[0].data, { code: 'wx-code-1' })
  assert.ok(page.querySelector('.bind'), 'the binding form is shown')
  page.instance.onName({ detail: { value: ' 闫思振 ' } })
  page.instance.onPhone({ detail: { value: '17500001759' } })
  await page.instance.bind()
  const bind = wx.calls.requests[1]
  assert.deepEqual(bind.data, { name: '闫思振', phone: '17500001759' })
  assert.equal(bind.header.Authorization, 'Bearer w1', 'binding uses the WeChat identity token')
  assert.deepEqual(wx.calls.navigations.at(-1), { kind: 'switchTab', url: '/pages/home/home' })
})

test('in develop a demo openid in storage signs in with a dev: code; other versions always use wx.login', async () => {
  const auth = require('../utils/auth')
  let wx = installWx({ storage: { 'dev.openid': 'demo-member-1' }, handle: () => ok({ access_token: 'a', refresh_token: 'r',
    member: ME.member, needs_binding: false }) })
  await auth.signIn()
  assert.deepEqual(wx.calls.requests[0].data, { code: 'dev:demo-member-1' })
  wx = installWx({ envVersion: 'release', storage: { 'dev.openid': 'demo-member-1' },
    handle: () => ok({ access_token: 'a', refresh_token: 'r', member: ME.member, needs_binding: false }) })
  await auth.signIn()
  assert.deepEqual(wx.calls.requests[0].data, { code: 'wx-code-1' })
})

test('binding with a malformed phone says so and sends nothing', async () => {
  const wx = installWx({ storage: signedIn({ needs_binding: true }) })
  const page = renderPage('login')
  page.instance.onLoad({ bind: '1' })
  page.instance.onName({ detail: { value: '闫思振' } })
  page.instance.onPhone({ detail: { value: '1750000' } })
  await page.instance.bind()
  assert.equal(text(page, '.phone-error'), '请填写 11 位手机号')
  assert.equal(wx.calls.requests.length, 0)
})

test('a member not on the roster reads why binding failed and whom to ask', async () => {
  const wx = installWx({ storage: signedIn({ needs_binding: true }), handle: () => failure(404, 'member_not_found',
    '花名册中没有与姓名和手机号匹配的党员，请联系支部书记核对') })
  const page = renderPage('login')
  page.instance.onLoad({ bind: '1' })
  page.instance.onName({ detail: { value: '某某' } })
  page.instance.onPhone({ detail: { value: '13800000000' } })
  await page.instance.bind()
  assert.equal(wx.calls.modals[0].title, '未找到党员信息')
  assert.match(wx.calls.modals[0].content, /联系支部书记/)
})

test('scan checks in with the token, a gcj02 fix and an Idempotency-Key, and remembers the check-in', async () => {
  const wx = installWx({ storage: signedIn(), answers: { scanCode: { result: TOKEN } },
    handle: api({ 'POST /activities/42/checkins': ok({ checkin_id: 7, status: 'checked_in',
      checked_in_at: '2026-12-04T09:00:00+08:00' }, 201) }) })
  let locationType = null
  const locate = wx.getLocation
  wx.getLocation = (options) => { locationType = options.type; locate(options) }
  const page = renderPage('scan')
  await page.instance.checkIn()
  const sent = wx.calls.requests[0]
  assert.equal(locationType, 'gcj02')
  assert.deepEqual(sent.data, { token: TOKEN, lat: 35.4154, lng: 116.5872, accuracy: 30 })
  assert.match(sent.header['Idempotency-Key'], /^[A-Za-z0-9_-]{8,64}$/)
  assert.equal(text(page, '.result-title'), '签到成功')
  assert.equal(wx.getStorageSync('checkins').items['42'].checkin_id, 7)
})

test('scan then checks out the remembered check-in and reports the hours', async () => {
  const wx = installWx({ storage: { ...signedIn(), checkins: { member_id: 58, items: { 42: { checkin_id: 7 } } } },
    answers: { scanCode: { result: TOKEN } },
    handle: api({ 'POST /checkins/7/checkout': ok({ checkin_id: 7, status: 'checked_out', hours: 2.5 }) }) })
  const page = renderPage('scan')
  await page.instance.checkOut()
  assert.deepEqual(wx.calls.requests[0].data, { token: TOKEN, lat: 35.4154, lng: 116.5872 })
  assert.equal(text(page, '.result-title'), '签退成功')
  assert.match(text(page, '.result-content'), /2.5 小时/)
})

test('a phone without the check-in (answer lost, reinstalled, another phone) learns its id from a repeated scan', async () => {
  const wx = installWx({ storage: signedIn(), answers: { scanCode: { result: TOKEN } }, handle: api({
    'POST /activities/42/checkins': failure(409, 'already_checked_in', '您已签到，请勿重复签到', { checkin_id: 7 }),
    'POST /checkins/7/checkout': ok({ checkin_id: 7, status: 'checked_out', hours: 2 }),
  }) })
  const page = renderPage('scan')
  await page.instance.checkIn()
  assert.equal(wx.calls.modals[0].title, '您已签到')
  assert.match(wx.calls.modals[0].content, /扫码签退/)
  assert.equal(wx.getStorageSync('checkins').items['42'].checkin_id, 7)
  await page.instance.checkOut()
  assert.equal(route(wx.calls.requests.at(-1)).path, '/checkins/7/checkout')
  assert.equal(text(page, '.result-title'), '签退成功')
})

test('a refusal that names no check-in leaves what this phone remembers alone', async () => {
  const wx = installWx({ storage: { ...signedIn(), checkins: { member_id: 58, items: { 42: { checkin_id: 7 } } } },
    answers: { scanCode: { result: TOKEN } },
    handle: () => failure(409, 'already_checked_in', '您已签到，请勿重复签到') })
  await renderPage('scan').instance.checkIn()
  assert.deepEqual(wx.getStorageSync('checkins'), { member_id: 58, items: { 42: { checkin_id: 7 } } })
})

test('a shared phone: the next member sees none of the first member\'s sign-ups or check-ins, even without a sign-out', async () => {
  const activity = { id: 9, title: '清理楼道', community: { id: 14, name: '南池社区' },
    starts_at: new Date(Date.now() + 86400000).toISOString(), ends_at: new Date(Date.now() + 90000000).toISOString(),
    location: { lat: 35.41, lng: 116.58, radius_m: 200 }, capacity: 20, status: 'published' }
  const other = { ...ME.member, id: 77, name: '王五' }
  const wx = installWx({ storage: signedIn({ member: ME.member }), answers: { scanCode: { result: TOKEN } },
    handle: api({
      'GET /me': ok(ME),
      'GET /activities': ok({ items: [activity], total: 1, page: 1, page_size: 50 }),
      'POST /activities/9/signups': ok({ activity_id: 9, status: 'signed_up' }, 201),
      'POST /activities/42/checkins': ok({ checkin_id: 7, status: 'checked_in' }, 201),
      'POST /auth/wechat': ok({ access_token: 'access-2', refresh_token: 'refresh-2', needs_binding: false,
        member: other }),
    }) })
  let page = renderPage('activities')
  await page.instance.load()
  await page.instance.signUp({ currentTarget: { dataset: { id: 9 } } })
  assert.ok(page.querySelector('.withdraw'))
  await renderPage('scan').instance.checkIn()
  // the session ended (no sign-out) and another member signs in on this phone
  await require('../utils/auth').signIn()
  page = renderPage('activities')
  await page.instance.load()
  assert.ok(page.querySelector('.signup'), 'not marked 已报名 for the second member')
  assert.ok(!page.querySelector('.withdraw'))
  const sent = wx.calls.requests.length
  await renderPage('scan').instance.checkOut()
  assert.equal(wx.calls.requests.length, sent, 'no check-out against the first member\'s check-in')
  assert.equal(wx.calls.modals.at(-1).title, '未找到签到记录')
  assert.deepEqual(require('../utils/checkin').rememberedCheckins(), {})
})

test('a member signing in again on his phone (his session had ended) keeps his sign-ups and check-ins', async () => {
  installWx({ storage: signedIn({ member: ME.member }), answers: { scanCode: { result: TOKEN } },
    handle: api({
      'POST /activities/42/checkins': ok({ checkin_id: 7, status: 'checked_in' }, 201),
      'POST /auth/wechat': ok({ access_token: 'access-2', refresh_token: 'refresh-2', needs_binding: false,
        member: ME.member }),
    }) })
  await renderPage('scan').instance.checkIn()
  await require('../utils/auth').signIn()
  assert.equal(require('../utils/checkin').rememberedCheckins()['42'].checkin_id, 7)
})

test('signing out forgets the member\'s sign-ups and check-ins on this phone', async () => {
  const wx = installWx({ storage: signedIn({ member: ME.member }), answers: { scanCode: { result: TOKEN } },
    handle: api({
      'GET /me': ok(ME),
      'POST /activities/42/checkins': ok({ checkin_id: 7, status: 'checked_in' }, 201),
      'GET /activities': ok({ items: [], total: 0, page: 1, page_size: 50 }),
      'POST /activities/9/signups': ok({ activity_id: 9, status: 'signed_up' }, 201),
      'POST /auth/logout': ok(null),
    }) })
  await renderPage('scan').instance.checkIn()
  await renderPage('activities').instance.signUp({ currentTarget: { dataset: { id: 9 } } })
  assert.ok(wx.getStorageSync('signups'))
  const checkins = wx.getStorageSync('checkins')
  assert.ok(checkins, 'remembered while signed in')
  const page = renderPage('mine')
  await page.instance.onShow()
  page.instance.signOut()
  await until(() => wx.calls.navigations.length > 0)
  assert.equal(wx.getStorageSync('checkins'), '')
  assert.equal(wx.getStorageSync('signups'), '')
})

const CHECKIN_REFUSALS = [
  [422, 'checkin_token_invalid', '签到码无效或已过期，请重新扫码', '签到码已失效', /最新的二维码/],
  [422, 'outside_geofence', '您距活动地点约 820 米，超出 200 米的签到范围', '不在活动地点范围内', /约 820 米/],
  [422, 'outside_time_window', '不在签到时间内（开始前 30 分钟至结束）', '不在签到时间内', /开始前 30 分钟/],
  [409, 'already_checked_in', '您已签到，请勿重复签到', '您已签到', /扫码签退/],
  [409, 'activity_not_open', '活动尚未发布或已取消', '活动未开放', /组织者/],
  [404, 'not_found', '活动不存在', '未找到', /签到码/],
  [409, 'idempotency_in_flight', '相同的请求正在处理中，请稍后重试', '正在处理', /稍等/],
]

for (const [status, code, message, title, advice] of CHECKIN_REFUSALS) {
  test(`a check-in refused with ${code} is explained in a dialog`, async () => {
    const wx = installWx({ storage: signedIn(), answers: { scanCode: { result: TOKEN } },
      handle: () => failure(status, code, message) })
    const page = renderPage('scan')
    await page.instance.checkIn()
    assert.equal(wx.calls.modals.length, 1, 'one dialog, not a toast on top')
    assert.equal(wx.calls.modals[0].title, title)
    assert.match(wx.calls.modals[0].content, advice)
    assert.equal(text(page, '.result-title'), title)
  })
}

test('a check-out with no check-in on this phone is explained without calling the API', async () => {
  const wx = installWx({ storage: signedIn(), answers: { scanCode: { result: TOKEN } } })
  await renderPage('scan').instance.checkOut()
  assert.equal(wx.calls.requests.length, 0)
  assert.equal(wx.calls.modals[0].title, '未找到签到记录')
})

test('a denied location permission offers the settings page', async () => {
  const wx = installWx({ storage: signedIn(), answers: { scanCode: { result: TOKEN },
    getLocation: { fail: { errMsg: 'getLocation:fail auth deny' } } } })
  await renderPage('scan').instance.checkIn()
  assert.equal(wx.calls.modals[0].title, '无法获取位置')
  assert.equal(wx.calls.modals[0].confirmText, '去设置')
  await until(() => wx.calls.navigations.some((n) => n.kind === 'openSetting'))
  assert.equal(wx.calls.requests.length, 0)
})

test('a code that is not a check-in code is refused before any request; a cancelled scan says nothing', async () => {
  const wx = installWx({ storage: signedIn(), answers: { scanCode: { result: 'https://example.com/x' } } })
  const page = renderPage('scan')
  await page.instance.checkIn()
  assert.equal(wx.calls.modals[0].title, '不是签到码')
  wx.answers.scanCode = { fail: { errMsg: 'scanCode:fail cancel' } }
  await page.instance.checkIn()
  assert.equal(wx.calls.modals.length, 1)
  assert.equal(wx.calls.requests.length, 0)
})

test('the leaderboard lists the members with ties and marks my own row and place', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(ME),
    'GET /leaderboards': ok({ items: [
      { rank: 1, subject: { id: 112, name: '杨宁', organization: { id: 7, name: '二支部' } }, points: 13 },
      { rank: 2, subject: { id: 58, name: '闫思振', organization: { id: 18, name: '一支部' } }, points: 8 },
      { rank: 2, subject: { id: 60, name: '王平', organization: null }, points: 8 }],
    total: 3, page: 1, page_size: 50, me: { rank: 2, points: 8 } }),
  }) })
  const page = renderPage('boards')
  await page.instance.onShow()
  const boardQuery = route(wx.calls.requests.at(-1)).query
  assert.deepEqual(boardQuery, { subject: 'member', scope: 'all', period: require('../utils/periods').quarterKey(), page_size: '50' })
  assert.equal(all(page, '.board-row').length, 3)
  assert.equal(all(page, '.board-row.mine').length, 1)
  assert.equal(text(page, '.my-rank'), '第 2 名')
  page.instance.onScope({ detail: { value: 1 } })
  await until(() => route(wx.calls.requests.at(-1)).query.scope === 'region:16')
})

test('the leaderboard offers my grid, community and branch even when I have no points yet this quarter', async () => {
  // 1 April: nobody is on the new quarter's board yet, but the year and the standing boards still rank me
  const fresh = { ...ME, ranks: {
    quarter: { period: '2027-Q2', on_board: false, points: 0, ranks: [] },
    standing: { period: 'standing', on_board: true, points: 15, ranks: [
      { scope: 'street:12', kind: 'street', scope_id: 12, label: '街道', rank: 40 },
      { scope: 'all', kind: 'all', scope_id: null, label: '全市', rank: 9 }] } } }
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(fresh),
    'GET /leaderboards': ok({ items: [], total: 0, page: 1, page_size: 50, me: null }),
  }) })
  const page = renderPage('boards')
  await page.instance.onShow()
  assert.deepEqual(page.data.scopes.map((scope) => scope.scope),
    ['all', 'region:16', 'community:14', 'region:12', 'organization:18'])
  assert.deepEqual(page.data.scopes.map((scope) => scope.label), ['全市', '网格', '社区', '街道', '党支部'])
  page.instance.onScope({ detail: { value: 2 } })
  await until(() => route(wx.calls.requests.at(-1)).query.scope === 'community:14')
})

test('the leaderboard offers the new month, quarter and year when shown again after a quarter ends, Shanghai time', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: new Date('2026-12-31T15:30:00Z') }) // 23:30 on 31 December in Shanghai
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(ME),
    'GET /leaderboards': ok({ items: [], total: 0, page: 1, page_size: 50, me: null }),
  }) })
  const page = renderPage('boards')
  await page.instance.onShow()
  assert.deepEqual(page.data.periods.map((period) => period.key), ['2026-12', '2026-Q4', '2026', 'standing'])
  await page.instance.choosePeriod({ currentTarget: { dataset: { key: '2026-12' } } }) // 本月
  t.mock.timers.setTime(Date.parse('2026-12-31T16:10:00Z')) // the app stays open past midnight: 1 January 2027
  await page.instance.onShow()
  assert.deepEqual(page.data.periods.map((period) => period.key), ['2027-01', '2027-Q1', '2027', 'standing'])
  assert.equal(route(wx.calls.requests.at(-1)).query.period, '2027-01', '本月 is still chosen, and it is January now')
  assert.equal(wx.calls.requests.filter((r) => route(r).path === '/me').length, 1)
})

test('signing up for an activity in my community flips its button to withdraw, and withdrawing back', async () => {
  const activity = { id: 9, title: '清理楼道', community: { id: 14, name: '南池社区' },
    starts_at: new Date(Date.now() + 86400000).toISOString(), ends_at: new Date(Date.now() + 90000000).toISOString(),
    location: { lat: 35.41, lng: 116.58, radius_m: 200 }, capacity: 20, status: 'published' }
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(ME),
    'GET /activities': ok({ items: [activity], total: 1, page: 1, page_size: 50 }),
    'POST /activities/9/signups': ok({ activity_id: 9, status: 'signed_up' }, 201),
    'DELETE /activities/9/signups': ok({ activity_id: 9, status: 'withdrawn' }),
  }) })
  const page = renderPage('activities')
  await page.instance.load()
  assert.equal(route(wx.calls.requests[1]).query.community_id, '14')
  assert.ok(page.querySelector('.signup'))
  await page.instance.signUp({ currentTarget: { dataset: { id: 9 } } })
  assert.ok(page.querySelector('.withdraw'))
  await page.instance.withdraw({ currentTarget: { dataset: { id: 9 } } })
  assert.ok(page.querySelector('.signup'))
  assert.deepEqual(wx.calls.requests.slice(2).map((r) => r.method), ['POST', 'DELETE'])
})

test('已报名 is the server\'s signed_up, whatever this phone remembers; an older server falls back on the phone', async () => {
  const at = (id, signedUp) => ({ id, title: `活动${id}`, community: { id: 14, name: '南池社区' },
    starts_at: new Date(Date.now() + 86400000).toISOString(), ends_at: new Date(Date.now() + 90000000).toISOString(),
    location: { lat: 35.41, lng: 116.58, radius_m: 200 }, capacity: 20, status: 'published',
    ...(signedUp === undefined ? {} : { signed_up: signedUp }) })
  // a new phone (remembers nothing) for 7, a phone that remembers a sign-up the server says was withdrawn for 8
  installWx({ storage: { ...signedIn(), signups: { member_id: 58, items: { 8: true } } }, handle: api({
    'GET /me': ok(ME),
    'GET /activities': ok({ items: [at(7, true), at(8, false), at(9, true)], total: 3, page: 1, page_size: 50 }),
    'DELETE /activities/9/signups': ok({ activity_id: 9, status: 'withdrawn' }),
  }) })
  const page = renderPage('activities')
  await page.instance.load()
  assert.deepEqual(page.data.rows.map((row) => row.signedUp), [true, false, true])
  const cards = () => all(page, '.activity').map((card) => card.dom.textContent)
  assert.match(cards()[0], /已报名/)
  assert.doesNotMatch(cards()[1], /已报名/)
  await page.instance.withdraw({ currentTarget: { dataset: { id: 9 } } })
  assert.deepEqual(page.data.rows.map((row) => row.signedUp), [true, false, false], 'only the withdrawn row changes')

  installWx({ storage: { ...signedIn(), signups: { member_id: 58, items: { 8: true } } }, handle: api({
    'GET /me': ok(ME),
    'GET /activities': ok({ items: [at(7), at(8)], total: 2, page: 1, page_size: 50 }), // no signed_up
  }) })
  const older = renderPage('activities')
  await older.instance.load()
  assert.deepEqual(older.data.rows.map((row) => row.signedUp), [false, true])
})

test('a cancelled activity shows 已取消 and offers no sign-up; one cancelled meanwhile is marked on refusal', async () => {
  const at = (id, status) => ({ id, title: `活动${id}`, community: { id: 14, name: '南池社区' },
    starts_at: new Date(Date.now() + 86400000).toISOString(), ends_at: new Date(Date.now() + 90000000).toISOString(),
    location: { lat: 35.41, lng: 116.58, radius_m: 200 }, capacity: 20, status })
  installWx({ storage: { ...signedIn(), signups: { member_id: 58, items: { 8: true } } }, handle: api({
    'GET /me': ok(ME),
    'GET /activities': ok({ items: [at(7, 'published'), at(8, 'cancelled')], total: 2, page: 1, page_size: 50 }),
    'POST /activities/7/signups': failure(409, 'activity_cancelled', '活动已取消'),
  }) })
  const page = renderPage('activities')
  await page.instance.load()
  const cards = all(page, '.activity').map((card) => card.dom.textContent)
  assert.equal(cards.length, 2)
  assert.match(cards[0], /我要报名/)
  assert.doesNotMatch(cards[0], /已取消/)
  assert.match(cards[1], /已取消/)
  assert.doesNotMatch(cards[1], /报名|签到/, 'nothing to do, though this phone had signed up')
  assert.equal(all(page, '.signup').length, 1)
  await page.instance.signUp({ currentTarget: { dataset: { id: 7 } } })
  assert.equal(all(page, '.cancelled').length, 2)
  assert.equal(all(page, '.signup').length, 0)
})

test('activities near me are sorted by distance and far ones left out', async () => {
  const at = (id, lat, lng) => ({ id, title: `活动${id}`, community: { id: 1, name: '社区' },
    starts_at: new Date(Date.now() + 3600000).toISOString(), ends_at: new Date(Date.now() + 7200000).toISOString(),
    location: { lat, lng, radius_m: 200 }, capacity: null })
  installWx({ storage: signedIn(), handle: api({ 'GET /activities': ok({ items: [
    at(1, 35.43, 116.5872), at(2, 35.416, 116.5872), at(3, 36.5, 116.5872)], total: 3 }) }) })
  const page = renderPage('activities')
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'near' } } })
  assert.deepEqual(page.data.rows.map((row) => row.id), [2, 1])
})

/** GET /activities as the service pages it: ?page=&page_size= (at most 100), with the total. */
function activityPages(activities) {
  return (options) => {
    const query = route(options).query
    const size = Math.min(Number(query.page_size || 20), 100)
    const number = Number(query.page || 1)
    return ok({ items: activities.slice((number - 1) * size, number * size), page: number, page_size: size,
      total: activities.length })
  }
}

function upcoming(id, lat = 35.41, lng = 116.58) {
  return { id, title: `活动${id}`, community: { id: 14, name: '南池社区' },
    starts_at: new Date(Date.now() + 86400000 + id * 1000).toISOString(),
    ends_at: new Date(Date.now() + 90000000 + id * 1000).toISOString(),
    location: { lat, lng, radius_m: 200 }, capacity: null, status: 'published' }
}

test('my community loads more activities on scroll, every page from the same moment', async () => {
  const activities = Array.from({ length: 45 }, (_, index) => upcoming(index + 1))
  const wx = installWx({ storage: signedIn(), handle: api({ 'GET /me': ok(ME), 'GET /activities': activityPages(activities) }) })
  const page = renderPage('activities')
  await page.instance.load()
  const first = page.data.rows.length
  assert.ok(first > 0 && first < 45, 'a first page, not everything')
  while (!page.data.done) await page.instance.onReachBottom()
  assert.deepEqual(page.data.rows.map((row) => row.id), activities.map((activity) => activity.id))
  const asked = wx.calls.requests.filter((r) => route(r).path === '/activities').map((r) => route(r).query)
  assert.deepEqual(asked.map((query) => query.page), asked.map((_, index) => String(index + 1)))
  assert.ok(asked.every((query) => query.community_id === '14' && query.from === asked[0].from))
  assert.equal(all(page, '.activity').length, 45)
  const count = wx.calls.requests.length
  await page.instance.onReachBottom()
  assert.equal(wx.calls.requests.length, count, 'nothing asked after the last page')
})

test('activities near me are found beyond the first page of the city\'s upcoming ones', async () => {
  const far = (id) => upcoming(id, 36.5, 116.58)
  const activities = Array.from({ length: 250 }, (_, index) => far(index + 1))
  activities[229] = upcoming(230, 35.416, 116.5872)
  const wx = installWx({ storage: signedIn(), handle: api({ 'GET /activities': activityPages(activities) }) })
  const page = renderPage('activities')
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'near' } } })
  assert.deepEqual(page.data.rows.map((row) => row.id), [230])
  const asked = wx.calls.requests.filter((r) => route(r).path === '/activities').map((r) => route(r).query)
  assert.deepEqual(asked.map((query) => query.page), ['1', '2', '3'])
  assert.ok(asked.every((query) => query.from === asked[0].from && !query.community_id))
  assert.equal(page.querySelector('.truncated'), undefined)
})

test('activities near me read a bounded number of pages and say so when the city has more', async () => {
  const activities = Array.from({ length: 5000 }, (_, index) => upcoming(index + 1, 36.5, 116.58))
  activities[3] = upcoming(4, 35.416, 116.5872)
  const wx = installWx({ storage: signedIn(), handle: api({ 'GET /activities': activityPages(activities) }) })
  const page = renderPage('activities')
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'near' } } })
  const asked = wx.calls.requests.filter((r) => route(r).path === '/activities')
  assert.ok(asked.length > 1 && asked.length < 50, `${asked.length} pages asked`)
  assert.deepEqual(page.data.rows.map((row) => row.id), [4])
  assert.match(text(page, '.truncated'), /最近开始的/)
})

test('choosing my community while the nearby activities load shows my community only', async () => {
  const near = upcoming(5, 35.416, 116.5872)
  const mine = { ...upcoming(6), title: '社区活动' }
  let release
  installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(ME),
    'GET /activities': (options) => (route(options).query.community_id
      ? ok({ items: [mine], page: 1, page_size: 20, total: 1 })
      : new Promise((resolve) => { release = () => resolve(ok({ items: [near], page: 1, page_size: 100, total: 1 })) })),
  }) })
  const page = renderPage('activities')
  const nearby = page.instance.switchTab({ currentTarget: { dataset: { tab: 'near' } } })
  await until(() => release)
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'community' } } })
  release()
  await nearby
  assert.deepEqual(page.data.rows.map((row) => row.id), [6])
  assert.equal(page.data.loading, false)
})

test('a self-report is sent with the chosen item, Shanghai time, hours, evidence and one Idempotency-Key', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /policy': ok({ items: [{ code: 'member.self_service_hour', name: '自主服务上报', subject: 'member',
      kind: 'award', approval: 'branch_secretary', unit: 'hours' }] }),
    'GET /records': ok({ items: [], total: 0 }),
    'POST /records': ok({ id: 3, status: 'pending' }, 201),
  }) })
  const page = renderPage('report')
  page.instance.onLoad()
  await page.instance.onShow()
  page.instance.onDay({ detail: { value: '2026-12-01' } })
  page.instance.onTime({ detail: { value: '14:30' } })
  page.instance.onHours({ detail: { value: '2' } })
  page.instance.onDescription({ detail: { value: '为独居老人送药' } })
  page.instance.onLink({ detail: { value: 'http://not-https.example.cn/a.jpg' } })
  page.instance.addLink()
  assert.equal(page.data.links.length, 0, 'a plain http link is refused')
  page.instance.onLink({ detail: { value: 'https://img.example.cn/a.jpg' } })
  page.instance.addLink()
  assert.ok(page.querySelector('.add-photos'), 'photos are uploaded to the API, so the photo button is offered')
  await page.instance.submit()
  const sent = wx.calls.requests.find((r) => r.method === 'POST')
  assert.deepEqual(sent.data, { item_code: 'member.self_service_hour', occurred_at: '2026-12-01T14:30:00+08:00',
    description: '为独居老人送药', evidence: ['https://img.example.cn/a.jpg'], hours: 2 })
  assert.match(sent.header['Idempotency-Key'], /^[A-Za-z0-9_-]{8,64}$/)
  assert.equal(wx.calls.modals.at(-1).title, '已提交')
})

test('a self-report whose answer was lost is sent again with its key, and an edited one with a new key', async () => {
  // the service as docs/hardening.md says: a key done once replays its answer for the same body, 422 for another
  const done = new Map()
  let online = false
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /policy': ok({ items: [{ code: 'member.self_service_hour', name: '自主服务上报', subject: 'member',
      kind: 'award', approval: 'branch_secretary', unit: 'hours' }] }),
    'GET /records': ok({ items: [], total: 0 }),
    'POST /records': (options) => {
      const key = options.header['Idempotency-Key']
      const body = JSON.stringify(options.data)
      if (done.has(key) && done.get(key) !== body) {
        return failure(422, 'idempotency_key_reused', '该 Idempotency-Key 已用于另一个请求')
      }
      done.set(key, body) // filed; without a network the answer never comes back
      return online ? ok({ id: done.size, status: 'pending' }, 201) : { fail: { errMsg: 'request:fail timeout' } }
    },
  }) })
  const page = renderPage('report')
  page.instance.onLoad()
  await page.instance.onShow()
  page.instance.onHours({ detail: { value: '2' } })
  page.instance.onDescription({ detail: { value: '为独居老人送药' } })
  await page.instance.submit()
  const posts = () => wx.calls.requests.filter((r) => r.method === 'POST')
  const first = posts()[0].header['Idempotency-Key']
  assert.ok(posts().every((r) => r.header['Idempotency-Key'] === first), 'the retries carry the same key')
  await page.instance.submit() // tapped again, unchanged: the same report, so the same key
  assert.equal(posts().length, 6)
  assert.ok(posts().every((r) => r.header['Idempotency-Key'] === first))

  page.instance.onDescription({ detail: { value: '为独居老人送药，并打扫了房间' } }) // the member adds a detail
  online = true
  await page.instance.submit()
  const edited = posts().at(-1)
  assert.notEqual(edited.header['Idempotency-Key'], first, 'another body takes another key')
  assert.ok(!wx.calls.modals.some((m) => m.title === '请重新操作'), 'never refused as a reused key')
  assert.equal(wx.calls.modals.at(-1).title, '已提交')
})

const SENT_BACK = { id: 3, item_code: 'member.self_service_hour', item_name: '自主服务上报', status: 'needs_info',
  occurred_at: '2026-12-01T14:30:00+08:00', description: '为独居老人送药', evidence: ['https://img.example.cn/a.jpg'],
  decision_comment: '请补充服务对象签字' }
const STILL_PENDING = { ...SENT_BACK, id: 2, status: 'pending', decision_comment: '', description: '楼道清理' }

test('a report sent back for more information shows what to add, and 补充材料 resubmits it with photos and links', async () => {
  const photo = 'http://api.test/api/v1/uploads/evidence/AbCdEfGhIjKlMnOpQrStUvWxYz012345.jpg'
  let resubmitted = false
  const wx = installWx({ storage: signedIn(),
    answers: { chooseMedia: { tempFiles: [{ tempFilePath: 'wxfile://signed.jpg' }] },
      uploadFile: { statusCode: 201, data: JSON.stringify(ok({ url: photo }).data) } },
    handle: api({
      'GET /policy': ok({ items: [] }),
      'GET /records': () => ok({ items: [resubmitted ? { ...SENT_BACK, status: 'pending', decision_comment: '' } : SENT_BACK,
        STILL_PENDING], total: 2 }),
      'POST /records/3/resubmit': (options) => { resubmitted = true; return ok({ ...SENT_BACK, ...options.data, status: 'pending' }) },
    }) })
  const page = renderPage('report')
  page.instance.onLoad()
  await page.instance.onShow()
  const [sentBack, pending] = all(page, '.record')
  assert.match(sentBack.dom.textContent, /需补充材料[\s\S]*审核意见：请补充服务对象签字/)
  assert.equal(all(page, '.open-fix').length, 1, 'only a record sent back may be resubmitted')
  assert.doesNotMatch(pending.dom.textContent, /补充材料/)
  page.instance.openFix({ currentTarget: { dataset: { id: 3 } } })
  assert.equal(page.data.fix.description, '为独居老人送药', 'the description as filed, to edit')
  assert.equal(all(page, '.fix .evidence').length, 1, 'the evidence as filed')
  page.instance.onFixDescription({ detail: { value: '为独居老人送药，附老人签字' } })
  await page.instance.addPhotos({ currentTarget: { dataset: { form: 'fix' } } })
  page.instance.onLink({ currentTarget: { dataset: { form: 'fix' } }, detail: { value: 'https://img.example.cn/b.jpg' } })
  page.instance.addLink({ currentTarget: { dataset: { form: 'fix' } } })
  assert.ok(page.querySelector('.fix .evidence .photo'), 'the uploaded photo is shown as a picture')
  assert.equal(page.data.links.length, 0, 'the new-report form is left alone')
  await page.instance.resubmit()
  const sent = wx.calls.requests.find((r) => route(r).path === '/records/3/resubmit')
  assert.equal(sent.method, 'POST')
  assert.deepEqual(sent.data, { description: '为独居老人送药，附老人签字',
    evidence: ['https://img.example.cn/a.jpg', photo, 'https://img.example.cn/b.jpg'] })
  assert.match(sent.header['Idempotency-Key'], /^[A-Za-z0-9_-]{8,64}$/)
  assert.equal(wx.calls.requests.filter((r) => route(r).path === '/records').length, 2, 'the list is read again')
  assert.ok(!page.querySelector('.fix'), 'the form is closed')
  assert.equal(all(page, '.open-fix').length, 0)
  assert.match(all(page, '.record')[0].dom.textContent, /待审核/)
  assert.equal(wx.calls.toasts.at(-1).title, '已重新提交，等待审核')
})

test('a resubmission whose answer was lost is sent again with its key, and an edited one with a new key', async () => {
  const done = new Map()
  let online = false
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /policy': ok({ items: [] }),
    'GET /records': ok({ items: [SENT_BACK], total: 1 }),
    'POST /records/3/resubmit': (options) => {
      const key = options.header['Idempotency-Key']
      const body = JSON.stringify(options.data)
      if (done.has(key) && done.get(key) !== body) {
        return failure(422, 'idempotency_key_reused', '该 Idempotency-Key 已用于另一个请求')
      }
      done.set(key, body)
      return online ? ok({ ...SENT_BACK, status: 'pending' }) : { fail: { errMsg: 'request:fail timeout' } }
    },
  }) })
  const page = renderPage('report')
  page.instance.onLoad()
  await page.instance.onShow()
  page.instance.openFix({ currentTarget: { dataset: { id: 3 } } })
  page.instance.onFixDescription({ detail: { value: '附签字' } })
  await page.instance.resubmit()
  const posts = () => wx.calls.requests.filter((r) => route(r).path === '/records/3/resubmit')
  const first = posts()[0].header['Idempotency-Key']
  await page.instance.resubmit() // tapped again, unchanged: the same resubmission, so the same key
  assert.equal(posts().length, 6)
  assert.ok(posts().every((r) => r.header['Idempotency-Key'] === first), 'the retries carry the same key')
  assert.ok(page.querySelector('.fix'), 'the form stays open while it is not sent')

  page.instance.removeLink({ currentTarget: { dataset: { form: 'fix', index: 0 } } }) // the member drops a link
  online = true
  await page.instance.resubmit()
  const edited = posts().at(-1)
  assert.deepEqual(edited.data, { description: '附签字', evidence: [] })
  assert.notEqual(edited.header['Idempotency-Key'], first, 'another body takes another key')
  assert.ok(!wx.calls.modals.some((m) => m.title === '请重新操作'), 'never refused as a reused key')
  assert.ok(!page.querySelector('.fix'), 'the form is closed')
})

test('after choosing an earlier service day the date picker still reaches today, and no later', async () => {
  installWx({ storage: signedIn(), handle: api({ 'GET /policy': ok({ items: [] }), 'GET /records': ok({ items: [], total: 0 }) }) })
  const page = renderPage('report')
  page.instance.onLoad()
  const today = require('../utils/format').date(new Date().toISOString())
  const datePicker = () => {
    const pickers = []
    const walk = (node) => {
      if (!node || typeof node !== 'object') return
      if (node.tagName === 'wx-picker') pickers.push(Object.fromEntries(node.attrs.map((a) => [a.name, a.value])))
      ;(node.children || []).forEach(walk)
    }
    walk(page.toJSON())
    return pickers.find((attrs) => attrs.mode === 'date')
  }
  assert.equal(datePicker().end, today)
  page.instance.onDay({ detail: { value: '2026-01-01' } }) // a slip of the finger: the 1st instead of the 11th
  assert.equal(datePicker().value, '2026-01-01')
  assert.equal(datePicker().end, today, 'the later days stay selectable')
})

test('my ledger shows each entry with its reason and asks for the next page on scroll', async () => {
  const entry = (id, points, reason) => ({ id, ledger: 'assessment', kind: points < 0 ? 'deduction' : 'award',
    item_name: points < 0 ? '迟到' : '志愿服务', points, points_requested: points, reason,
    credited_at: '2026-12-01T10:00:00+08:00' })
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(ME),
    'GET /members/58/ledger': (options) => (route(options).query.page === '1'
      ? ok({ items: [entry(1, 3, '参加清理楼道'), entry(2, -1, '迟到 20 分钟')], total: 3, page: 1, page_size: 2 })
      : ok({ items: [entry(3, 1, '')], total: 3, page: 2, page_size: 2 })),
  }) })
  const page = renderPage('ledger')
  await page.instance.onLoad()
  assert.deepEqual(all(page, '.entry-points').map((n) => n.dom.textContent.trim()), ['+3', '-1'])
  assert.equal(text(page, '.entry-reason'), '原因：参加清理楼道')
  await page.instance.onReachBottom()
  assert.equal(all(page, '.entry').length, 3)
  await page.instance.onReachBottom()
  assert.equal(wx.calls.requests.length, 3, 'no request after the last page')
})

test('my ledger names every ledger in Chinese, the monthly 活跃指数 decay included', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(ME),
    'GET /members/58/ledger': ok({ items: [
      { id: 9, ledger: 'standing', kind: 'decay', item_code: 'standing.decay', item_name: '活跃指数衰减', points: -0.75,
        points_requested: -0.75, reason: '2026-11 活跃指数衰减 5%', credited_at: '2026-12-01T00:10:00+08:00' },
      { id: 8, ledger: 'redeemable', kind: 'redemption', item_code: 'market.redemption', item_name: '积分超市兑换',
        points: -5, points_requested: -5, reason: '积分超市兑换：环保购物袋 × 1', credited_at: '2026-11-30T10:00:00+08:00' }],
    total: 2, page: 1, page_size: 20 }),
  }) })
  const page = renderPage('ledger')
  await page.instance.onLoad()
  const lines = all(page, '.entry').map((entry) => entry.dom.textContent)
  assert.equal(lines.length, 2)
  assert.match(lines[0], /活跃指数 · 衰减/)
  assert.doesNotMatch(lines[0], /standing/)
  assert.match(lines[1], /公益积分 · 兑换/)
  assert.equal(wx.calls.requests.length, 2)
})

test('choosing another period while my ledger loads shows that period only, not the entries of the earlier one', async () => {
  const entry = (id, reason) => ({ id, ledger: 'assessment', kind: 'award', item_name: '志愿服务', points: 1,
    points_requested: 1, reason, credited_at: '2026-12-01T10:00:00+08:00' })
  const month = require('../utils/periods').monthKey()
  let release = null
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /me': ok(ME),
    'GET /members/58/ledger': (options) => (route(options).query.period === month
      ? ok({ items: [entry(2, '本月')], total: 1, page: 1, page_size: 20 })
      : new Promise((resolve) => { release = () => resolve(ok({ items: [entry(1, '本年度')], total: 9, page: 1,
        page_size: 20 })) })),
  }) })
  const page = renderPage('ledger')
  const loading = page.instance.onLoad() // 本年度 on its way on a slow network
  await until(() => release)
  await page.instance.choosePeriod({ currentTarget: { dataset: { key: month } } }) // the member taps 本月 meanwhile
  assert.equal(wx.calls.requests.filter((r) => route(r).path === '/members/58/ledger').length, 2, '本月 is asked at once')
  release()
  await loading
  assert.deepEqual(page.data.rows.map((row) => row.id), [2])
  assert.equal(page.data.total, 1)
  assert.equal(text(page, '.entry-reason'), '原因：本月')
  assert.equal(page.data.loading, false)
})

const QUARTERLY_FLAGS = { items: [], red_flag: { period: 'quarter', scope: 'district', min_report_rate: '0.95',
  max_unexcused_absences: 0 } }

test('honors list the published stars and the red-flag holders of a quarter', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /policy': ok(QUARTERLY_FLAGS),
    'GET /stars': ok({ items: [{ member: { id: 5, name: '杨宁' }, community: { id: 1, name: '南池社区' },
      scope: { id: 1, name: '南池社区', type: 'community' }, period: '2026-Q3', status: 'final', points: 20,
      activities: 4, hours: 9, position: 1 }], total: 1 }),
    'GET /red-flags': ok({ period: '2026-Q3', items: [
      { scope: { key: 'city', name: '全市' }, organization: { id: 2, name: '一支部' }, kind_name: '夺旗', score: 6.5 },
      { scope: { key: 'district:3', name: '泗水县' }, organization: null, reason: '无党支部达到报到率要求' }] }),
  }) })
  const page = renderPage('honors')
  await page.instance.onLoad()
  assert.equal(all(page, '.star').length, 1)
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'flags' } } })
  assert.equal(all(page, '.flag').length, 2)
  assert.match(all(page, '.flag')[1].dom.textContent, /空缺[\s\S]*报到率/)
  const honors = wx.calls.requests.filter((r) => route(r).path !== '/policy')
  assert.ok(honors.length === 2 && honors.every((r) => /period=\d{4}-Q[1-4]/.test(r.url)))
})

test('monthly 流动红旗 are asked for by month, as the policy says, while 业务之星 stay quarterly', async () => {
  const periods = require('../utils/periods')
  const wx = installWx({ storage: signedIn(), handle: api({
    'GET /policy': ok({ ...QUARTERLY_FLAGS, red_flag: { ...QUARTERLY_FLAGS.red_flag, period: 'month' } }),
    'GET /stars': ok({ items: [], total: 0 }),
    'GET /red-flags': (options) => ok({ period: route(options).query.period, items: [
      { scope: { key: 'city', name: '全市' }, organization: { id: 2, name: '一支部' }, kind_name: '首次', score: 3 }] }),
  }) })
  const page = renderPage('honors')
  await page.instance.onLoad()
  assert.equal(text(page, '.prev'), '‹ 上一季')
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'flags' } } })
  const flags = () => wx.calls.requests.filter((r) => route(r).path === '/red-flags').map((r) => route(r).query.period)
  const lastMonth = periods.previousMonthKey()
  assert.deepEqual(flags(), [lastMonth], 'the month before this one, not a quarter')
  assert.equal(text(page, '.period'), lastMonth)
  assert.equal(text(page, '.prev'), '‹ 上一月')
  assert.equal(all(page, '.flag').length, 1)
  await page.instance.shiftPeriod({ currentTarget: { dataset: { step: '-1' } } })
  assert.equal(flags().at(-1), periods.shiftKey(lastMonth, -1))
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'stars' } } })
  const stars = wx.calls.requests.filter((r) => route(r).path === '/stars').map((r) => route(r).query.period)
  assert.deepEqual(stars, [periods.previousQuarterKey(), periods.previousQuarterKey()], 'stars keep their quarter')
  assert.equal(text(page, '.prev'), '‹ 上一季')
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'flags' } } })
  assert.equal(flags().at(-1), periods.shiftKey(lastMonth, -1), 'the month chosen is kept')
  assert.equal(wx.calls.requests.filter((r) => route(r).path === '/policy').length, 1, 'the policy is read once')
})

test('a withdrawn star or red flag is still listed but marked withdrawn with the reason, never as a current honor', async () => {
  installWx({ storage: signedIn(), handle: api({
    'GET /policy': ok(QUARTERLY_FLAGS),
    'GET /stars': ok({ items: [
      { id: 11, member: { id: 5, name: '杨宁' }, community: { id: 1, name: '南池社区' }, scope: { id: 1, name: '南池社区' },
        period: '2026-Q3', status: 'final', points: 20, activities: 4, hours: 9, position: 1, withdrawn: true,
        withdrawn_reason: '服务记录不实', withdrawn_at: '2026-11-02T10:00:00+08:00' },
      { id: 12, member: { id: 6, name: '王平' }, community: { id: 1, name: '南池社区' }, scope: { id: 1, name: '南池社区' },
        period: '2026-Q3', status: 'final', points: 18, activities: 3, hours: 7, position: 2, withdrawn: false,
        withdrawn_reason: null, withdrawn_at: null }], total: 2 }),
    'GET /red-flags': ok({ period: '2026-Q3', items: [
      { id: 3, scope: { key: 'city', name: '全市' }, organization: { id: 2, name: '一支部' }, kind_name: '夺旗', score: 6.5,
        withdrawn: true, withdrawn_reason: '报到数据造假', withdrawn_at: '2026-11-02T10:00:00+08:00' }] }),
  }) })
  const page = renderPage('honors')
  await page.instance.onLoad()
  const stars = all(page, '.star')
  assert.equal(stars.length, 2)
  assert.doesNotMatch(stars[0].dom.textContent, /已确定/)
  assert.match(stars[0].dom.textContent, /已撤销[\s\S]*服务记录不实/)
  assert.match(stars[1].dom.textContent, /已确定/)
  assert.doesNotMatch(stars[1].dom.textContent, /已撤销/)
  await page.instance.switchTab({ currentTarget: { dataset: { tab: 'flags' } } })
  const flag = all(page, '.flag')[0].dom.textContent
  assert.match(flag, /已撤销/)
  assert.doesNotMatch(flag, /夺旗/)
  assert.match(flag, /报到数据造假/)
})

test('signing out revokes the session on the server with the refresh token, then forgets it here', async () => {
  const wx = installWx({ storage: signedIn(), handle: api({ 'GET /me': ok(ME), 'POST /auth/logout': ok(null) }) })
  const page = renderPage('mine')
  await page.instance.onShow()
  page.instance.signOut()
  await until(() => wx.calls.navigations.length > 0)
  const logout = wx.calls.requests.find((r) => route(r).path === '/auth/logout')
  assert.equal(logout.method, 'POST')
  assert.equal(logout.header.Authorization, 'Bearer refresh-1', 'the refresh token, not the access token')
  assert.equal(wx.getStorageSync('session'), '')
  assert.deepEqual(wx.calls.navigations.at(-1), { kind: 'reLaunch', url: '/pages/login/login' })
})

test('signing out without a network still forgets the session on this phone, quietly', async () => {
  const wx = installWx({ storage: signedIn(), handle: (options) => (route(options).path === '/auth/logout'
    ? { fail: { errMsg: 'request:fail timeout' } } : ok(ME)) })
  const page = renderPage('mine')
  await page.instance.onShow()
  page.instance.signOut()
  await until(() => wx.calls.navigations.length > 0)
  assert.equal(wx.getStorageSync('session'), '')
  assert.equal(wx.calls.toasts.length + wx.calls.modals.length, 1, 'only the confirmation dialog was shown')
  assert.deepEqual(wx.calls.navigations.at(-1), { kind: 'reLaunch', url: '/pages/login/login' })
})
