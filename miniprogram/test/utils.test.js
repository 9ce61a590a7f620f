const test = require('node:test')
const assert = require('node:assert/strict')
const { installWx, ok, failure, signedIn, route } = require('./helpers/wx')
const checkin = require('../utils/checkin')
const periods = require('../utils/periods')
const views = require('../utils/views')
const errors = require('../utils/errors')
const format = require('../utils/format')
const evidence = require('../utils/evidence')

test('a check-in code is read from a QR text, a mini-program code path or a scene, with its activity id', () => {
  const token = `${(1234).toString(36)}.${(59000000).toString(36)}.abcdefgh2345`
  assert.deepEqual(checkin.parseCheckinCode(token), { token, activityId: 1234 })
  assert.deepEqual(checkin.parseCheckinCode(`pages/scan/scan?scene=${encodeURIComponent(token)}`), { token, activityId: 1234 })
  assert.equal(checkin.parseCheckinCode('https://example.com/'), null)
  assert.equal(checkin.parseCheckinCode('12.ab.short'), null)
})

test('period keys are computed in Shanghai time, across the new year', () => {
  const justAfterNewYearInShanghai = new Date('2026-12-31T16:30:00Z')
  assert.equal(periods.monthKey(justAfterNewYearInShanghai), '2027-01')
  assert.equal(periods.quarterKey(justAfterNewYearInShanghai), '2027-Q1')
  assert.equal(periods.yearKey(justAfterNewYearInShanghai), '2027')
  assert.equal(periods.previousQuarterKey(justAfterNewYearInShanghai), '2026-Q4')
  assert.equal(periods.previousQuarterKey(new Date('2026-08-01T00:00:00+08:00')), '2026-Q2')
  assert.equal(periods.previousKey('month', justAfterNewYearInShanghai), '2026-12')
  assert.equal(periods.previousKey('quarter', justAfterNewYearInShanghai), '2026-Q4')
  assert.deepEqual(['2027-01', '2026-12', '2026-Q4', '2027-Q1'].map((key) => periods.shiftKey(key, 1)),
    ['2027-02', '2027-01', '2027-Q1', '2027-Q2'])
  assert.deepEqual(['2027-01', '2026-12', '2027-Q1'].map((key) => periods.shiftKey(key, -1)),
    ['2026-12', '2026-11', '2026-Q4'])
})

test('times are shown in Shanghai and points without float noise', () => {
  assert.equal(format.dateTime('2026-11-01T01:30:00Z'), '2026-11-01 09:30')
  assert.equal(format.points(0.1 + 0.2), '0.3')
  assert.equal(format.signedPoints(2), '+2')
  assert.equal(format.signedPoints(-1.5), '-1.5')
})

test('every check-in error code the API returns has a title and a next step', () => {
  const codes = ['checkin_token_invalid', 'outside_geofence', 'outside_time_window', 'already_checked_in',
    'already_checked_out', 'activity_not_open', 'invalid_transition', 'not_found', 'idempotency_in_flight',
    'idempotency_key_reused', 'validation_failed', 'rate_limited', 'binding_required', 'token_expired']
  for (const code of codes) {
    assert.ok(errors.GUIDANCE[code], code)
    assert.ok(errors.GUIDANCE[code].title, code)
  }
})

test("the server's precise message is kept ahead of the generic advice", () => {
  const shown = errors.describe({ code: 'outside_geofence', message: '您距活动地点约 820 米，超出 200 米的签到范围' })
  assert.equal(shown.title, '不在活动地点范围内')
  assert.match(shown.content, /^您距活动地点约 820 米/)
  assert.match(shown.content, /请到达活动现场后再扫码/)
})

test('the home view shows the three periods, the balances and the ranks of every scope', () => {
  const view = views.home({
    member: { name: '张三', branch: { name: '一支部' }, community: { name: '夏阳社区' } },
    points: { month: 2, quarter: 8.5, year: 20, standing: 15.25, redeemable: 12, pending: 1,
      expiring: { points: 3, on: '2027-01-01T00:00:00+08:00' } },
    ranks: { quarter: { period: '2026-Q4', on_board: true, ranks: [{ scope: 'all', label: '全市', rank: 12 }] },
      standing: { on_board: false, ranks: [{ scope: 'all', label: '全市', rank: 40 }] } },
  })
  assert.deepEqual(view.cards.map((card) => card.value), ['2', '8.5', '20'])
  assert.equal(view.expiring.on, '2027-01-01')
  assert.ok(view.expiring.any)
  assert.deepEqual(view.quarterRanks, [{ scope: 'all', label: '全市', rank: 12 }])
  assert.deepEqual(view.standingRanks, [], 'a member not on the standing board shows no standing rank')
})

test('leaderboard scopes map each of my scopes to the query the API takes', () => {
  const scopes = views.boardScopes({ ranks: { quarter: { ranks: [
    { kind: 'grid', scope_id: 16, label: '网格' }, { kind: 'community', scope_id: 14, label: '社区' },
    { kind: 'all', scope_id: null, label: '全市' }, { kind: 'branch', scope_id: 18, label: '党支部' }] } } })
  assert.deepEqual(scopes.map((s) => s.scope), ['all', 'region:16', 'community:14', 'organization:18'])
})

test('only awards a person approves are offered for self-reporting', () => {
  const items = views.reportableItems({ items: [
    { code: 'member.report', subject: 'member', kind: 'award', approval: 'community_admin', unit: 'times' },
    { code: 'member.activity_hour', subject: 'member', kind: 'award', approval: 'auto', unit: 'hours' },
    { code: 'member.self_service_hour', name: '自主服务', subject: 'member', kind: 'award', approval: 'branch_secretary', unit: 'hours' },
    { code: 'member.late', subject: 'member', kind: 'deduction', approval: 'auto', unit: 'times' },
    { code: 'org.project_done', subject: 'organization', kind: 'award', approval: 'community_admin', unit: 'times' }] })
  assert.deepEqual(items, [{ code: 'member.self_service_hour', name: '自主服务', hours: true }])
})

test('evidence links must be https, as the API requires', () => {
  assert.ok(evidence.isEvidenceLink('https://img.example.cn/a.jpg'))
  assert.ok(!evidence.isEvidenceLink('http://img.example.cn/a.jpg'))
  assert.ok(!evidence.isEvidenceLink('wxfile://tmp_123.jpg'))
})

test('a photo is uploaded to the API as `file` with the bearer token, and its link comes back', async () => {
  const wx = installWx({ storage: signedIn(), answers: { uploadFile: { statusCode: 201,
    data: JSON.stringify(ok({ url: 'http://api.test/api/v1/uploads/evidence/abc.png' }).data) } } })
  assert.equal(await evidence.uploadPhoto('wxfile://tmp.png'), 'http://api.test/api/v1/uploads/evidence/abc.png')
  const sent = wx.calls.uploads[0]
  assert.equal(sent.url, 'http://api.test/api/v1/uploads/evidence')
  assert.equal(sent.name, 'file')
  assert.equal(sent.header.Authorization, 'Bearer access-1')
})

test('a refused photo carries the server code and message, so the page can explain it', async () => {
  installWx({ storage: signedIn(), answers: { uploadFile: { statusCode: 422,
    data: JSON.stringify(failure(422, 'picture_invalid', '图片格式应为 JPEG、PNG 或 WebP', { errors: { file: ['x'] } }).data) } } })
  await assert.rejects(evidence.uploadPhoto('wxfile://tmp.gif'),
    (error) => error.code === 'picture_invalid' && error.status === 422 && /JPEG/.test(error.message))
  assert.equal(errors.describe({ code: 'picture_invalid', message: '图片格式应为 JPEG、PNG 或 WebP' }).title, '照片无法使用')
})

test('an upload refused with 401 refreshes the token pair once and is sent again', async () => {
  const wx = installWx({ storage: signedIn(),
    handle: () => ok({ access_token: 'access-2', refresh_token: 'refresh-2' }),
    answers: { uploadFile: (options, n) => (n === 1
      ? { statusCode: 401, data: JSON.stringify(failure(401, 'token_expired', '登录已过期').data) }
      : { statusCode: 201, data: JSON.stringify(ok({ url: 'http://api.test/api/v1/uploads/evidence/b.png' }).data) }) } })
  assert.match(await evidence.uploadPhoto('wxfile://tmp.png'), /b\.png$/)
  assert.deepEqual(wx.calls.uploads.map((u) => u.header.Authorization), ['Bearer access-1', 'Bearer access-2'])
})

test('an upload refused with 401 whose refresh is refused ends the session and sends the member to sign in', async () => {
  const request = require('../utils/request')
  const session = require('../utils/session')
  let signedOut = 0
  request.setHandlers({ onSignedOut: () => { signedOut += 1 } })
  try {
    const wx = installWx({ storage: signedIn(),
      handle: () => failure(401, 'refresh_token_reused', '登录状态已失效，请重新登录'),
      answers: { uploadFile: { statusCode: 401, data: JSON.stringify(failure(401, 'token_expired', '登录已过期').data) } } })
    await assert.rejects(evidence.uploadPhoto('wxfile://tmp.png'), (error) => error.status === 401)
    assert.deepEqual(wx.calls.requests.map((r) => route(r).path), ['/auth/refresh'], 'one refresh, no loop')
    assert.equal(wx.calls.uploads.length, 1)
    assert.equal(session.read(), null, 'the dead tokens are forgotten, as for any other request')
    assert.equal(signedOut, 1)
  } finally {
    request.setHandlers({ onSignedOut: null })
  }
})

test('a message link is followed only when it is a page of the mini-program', () => {
  const notifications = require('../utils/notifications')
  assert.equal(notifications.pageLink('pages/orders/orders'), '/pages/orders/orders')
  assert.equal(notifications.pageLink('/pages/report/report?id=3'), '/pages/report/report?id=3')
  assert.equal(notifications.pageLink('https://example.com/x'), '')
  assert.equal(notifications.pageLink(null), '')
})
