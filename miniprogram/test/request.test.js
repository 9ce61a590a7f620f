const test = require('node:test')
const assert = require('node:assert/strict')
const { installWx, ok, failure, signedIn, route, API } = require('./helpers/wx')
const request = require('../utils/request')
const session = require('../utils/session')
const config = require('../config')

request.setDelay(() => Promise.resolve())

test('a successful envelope resolves with its data and the request carries the access token', async () => {
  const wx = installWx({ storage: signedIn(), handle: () => ok({ user: { id: 7 } }) })
  const data = await request.get('/me')
  assert.deepEqual(data, { user: { id: 7 } })
  assert.equal(wx.calls.requests[0].url, `${API}/api/v1/me`)
  assert.equal(wx.calls.requests[0].header.Authorization, 'Bearer access-1')
})

test('query arguments are encoded and empty ones left out', () => {
  assert.equal(request.queryString({ scope: 'community:3', period: '2026-Q4', page: null, name: '' }),
    '?scope=community%3A3&period=2026-Q4')
})

test('an error envelope rejects with its code and shows its Chinese message', async () => {
  const wx = installWx({ storage: signedIn(), handle: () => failure(409, 'activity_full', '活动报名人数已满') })
  await assert.rejects(request.post('/activities/3/signups', {}), (error) => {
    assert.equal(error.code, 'activity_full')
    assert.equal(error.status, 409)
    return true
  })
  const shown = [...wx.calls.toasts.map((t) => t.title), ...wx.calls.modals.map((m) => m.title + m.content)].join()
  assert.match(shown, /活动报名人数已满/)
})

test('field errors are shown in a dialog with the fields named in Chinese', async () => {
  const wx = installWx({ storage: signedIn(), handle: () => failure(422, 'validation_failed', '提交的数据有误',
    { errors: { hours: ['按小时计分的项目须填写时长'] } }) })
  await assert.rejects(request.post('/records', {}, { fieldLabels: { hours: '时长' } }))
  assert.equal(wx.calls.modals.length, 1)
  assert.match(wx.calls.modals[0].content, /时长：按小时计分的项目须填写时长/)
})

test('showError false leaves the message to the page', async () => {
  const wx = installWx({ storage: signedIn(), handle: () => failure(404, 'not_found', '资源不存在') })
  await assert.rejects(request.get('/activities/9', null, { showError: false }))
  assert.equal(wx.calls.toasts.length + wx.calls.modals.length, 0)
})

test('an expired access token is refreshed once and the request sent again with the new token', async () => {
  const wx = installWx({
    storage: signedIn(),
    handle: (options) => {
      const { path } = route(options)
      if (path === '/auth/refresh') return ok({ access_token: 'access-2', refresh_token: 'refresh-2' })
      return options.header.Authorization === 'Bearer access-2' ? ok({ fine: true })
        : failure(401, 'token_expired', '登录已过期，请刷新或重新登录')
    },
  })
  assert.deepEqual(await request.post('/records', { a: 1 }), { fine: true })
  const paths = wx.calls.requests.map((r) => route(r).path)
  assert.deepEqual(paths, ['/records', '/auth/refresh', '/records'])
  assert.equal(wx.calls.requests[1].header.Authorization, 'Bearer refresh-1')
  assert.equal(session.read().refresh_token, 'refresh-2')
})

test('concurrent requests that meet an expired token share one refresh', async () => {
  const wx = installWx({
    storage: signedIn(),
    handle: (options) => {
      if (route(options).path === '/auth/refresh') return ok({ access_token: 'access-2', refresh_token: 'refresh-2' })
      return options.header.Authorization === 'Bearer access-2' ? ok(1) : failure(401, 'token_expired', '登录已过期')
    },
  })
  await Promise.all([request.get('/me'), request.get('/leaderboards'), request.get('/policy')])
  assert.equal(wx.calls.requests.filter((r) => route(r).path === '/auth/refresh').length, 1)
})

test('when the refresh is refused the session ends and the member is sent to sign in, without a loop', async () => {
  let signedOut = 0
  request.setHandlers({ onSignedOut: () => { signedOut += 1 } })
  const wx = installWx({
    storage: signedIn(),
    handle: (options) => (route(options).path === '/auth/refresh'
      ? failure(401, 'refresh_token_reused', '登录状态已失效，请重新登录') : failure(401, 'token_expired', '登录已过期')),
  })
  await assert.rejects(request.get('/me'), (error) => error.status === 401)
  assert.equal(wx.calls.requests.length, 2)
  assert.equal(session.read(), null)
  assert.equal(signedOut, 1)
  request.setHandlers({ onSignedOut: null })
})

test('a refresh whose answer was lost is sent again with the same refresh token and the request goes through', async () => {
  let signedOut = 0
  request.setHandlers({ onSignedOut: () => { signedOut += 1 } })
  let refreshes = 0
  const wx = installWx({
    storage: signedIn(),
    handle: (options) => {
      if (route(options).path === '/auth/refresh') {
        refreshes += 1
        // The server rotated the token but the answer never arrived: the API accepts the same token again
        // within its retry grace (POINTS_REFRESH_REUSE_GRACE_SECONDS).
        return refreshes === 1 ? { fail: { errMsg: 'request:fail timeout' } }
          : ok({ access_token: 'access-2', refresh_token: 'refresh-2' })
      }
      return options.header.Authorization === 'Bearer access-2' ? ok({ fine: true }) : failure(401, 'token_expired', '登录已过期')
    },
  })
  assert.deepEqual(await request.post('/records', { a: 1 }), { fine: true })
  const sent = wx.calls.requests.filter((r) => route(r).path === '/auth/refresh').map((r) => r.header.Authorization)
  assert.deepEqual(sent, ['Bearer refresh-1', 'Bearer refresh-1'])
  assert.equal(session.read().refresh_token, 'refresh-2')
  assert.equal(signedOut, 0)
  request.setHandlers({ onSignedOut: null })
})

test('a refresh answered 503 is sent again', async () => {
  const wx = installWx({
    storage: signedIn(),
    handle: (options, n) => {
      if (route(options).path === '/auth/refresh') {
        return n === 2 ? failure(503, 'database_busy', '系统繁忙，请稍后重试')
          : ok({ access_token: 'access-2', refresh_token: 'refresh-2' })
      }
      return options.header.Authorization === 'Bearer access-2' ? ok(1) : failure(401, 'token_expired', '登录已过期')
    },
  })
  assert.equal(await request.get('/me'), 1)
  assert.deepEqual(wx.calls.requests.map((r) => route(r).path), ['/me', '/auth/refresh', '/auth/refresh', '/me'])
})

test('a refresh that cannot reach the server keeps the session and reports the network error', async () => {
  let signedOut = 0
  request.setHandlers({ onSignedOut: () => { signedOut += 1 } })
  const wx = installWx({
    storage: signedIn(),
    handle: (options) => (route(options).path === '/auth/refresh'
      ? { fail: { errMsg: 'request:fail timeout' } } : failure(401, 'token_expired', '登录已过期')),
  })
  await assert.rejects(request.post('/records', {}), (error) => error.code === 'network_error')
  assert.equal(wx.calls.requests.filter((r) => route(r).path === '/auth/refresh').length, 1 + request.MAX_RETRIES)
  assert.equal(session.read().refresh_token, 'refresh-1', 'kept: the next request refreshes with it again')
  assert.equal(signedOut, 0)
  assert.match(JSON.stringify([wx.calls.toasts, wx.calls.modals]), /网络不稳定/)
  request.setHandlers({ onSignedOut: null })
})

test('a GET that meets a network failure is retried and succeeds', async () => {
  const wx = installWx({ storage: signedIn(),
    handle: (_options, n) => (n < 3 ? { fail: { errMsg: 'request:fail timeout' } } : ok('third time')) })
  assert.equal(await request.get('/me'), 'third time')
  assert.equal(wx.calls.requests.length, 3)
})

test('a POST without an Idempotency-Key is never retried', async () => {
  const wx = installWx({ storage: signedIn(), handle: () => ({ fail: { errMsg: 'request:fail timeout' } }) })
  await assert.rejects(request.post('/activities/3/signups', {}), (error) => error.code === 'network_error')
  assert.equal(wx.calls.requests.length, 1)
  assert.match(JSON.stringify([wx.calls.toasts, wx.calls.modals]), /网络不稳定/)
})

test('a POST with an Idempotency-Key is retried with the same key after a 503', async () => {
  const wx = installWx({ storage: signedIn(),
    handle: (_options, n) => (n === 1 ? failure(503, 'service_unavailable', '服务暂时不可用') : ok({ checkin_id: 5 }, 201)) })
  const key = request.newIdempotencyKey()
  assert.deepEqual(await request.post('/activities/3/checkins', {}, { idempotencyKey: key }), { checkin_id: 5 })
  const keys = wx.calls.requests.map((r) => r.header['Idempotency-Key'])
  assert.deepEqual(keys, [key, key])
})

test('retries are bounded: a GET gives up after the last retry', async () => {
  const wx = installWx({ storage: signedIn(), handle: () => failure(503, 'service_unavailable', '服务暂时不可用') })
  await assert.rejects(request.get('/me'), (error) => error.code === 'service_unavailable')
  assert.equal(wx.calls.requests.length, 1 + request.MAX_RETRIES)
})

test('idempotency keys are accepted by the API pattern and differ each time', () => {
  const keys = new Set(Array.from({ length: 50 }, () => request.newIdempotencyKey()))
  assert.equal(keys.size, 50)
  for (const key of keys) assert.match(key, /^[A-Za-z0-9_-]{8,64}$/)
})

test('the API base follows the running version, and only develop honours the storage override', () => {
  installWx({ envVersion: 'trial', storage: { 'dev.apiBase': 'http://elsewhere' } })
  assert.equal(config.apiBase(), config.ENVIRONMENTS.trial.apiBase)
  installWx({ envVersion: 'release' })
  assert.equal(config.apiUrl('/me'), config.ENVIRONMENTS.release.apiBase + '/api/v1/me')
  installWx({ envVersion: 'develop', storage: { 'dev.apiBase': 'http://127.0.0.1:5078/' } })
  assert.equal(config.apiBase(), 'http://127.0.0.1:5078')
})

test('trial and release talk to the API over https only', () => {
  for (const env of ['trial', 'release']) assert.match(config.ENVIRONMENTS[env].apiBase, /^https:\/\//)
})
