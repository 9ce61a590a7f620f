/**
 * Sign-in: wx.login gives a one-time code, POST /auth/wechat exchanges it for a token pair (the server
 * calls WeChat; session_key never reaches the phone). A WeChat user not yet linked to the roster gets
 * `needs_binding: true` and binds with name + phone (POST /auth/bind), which answers a new token pair.
 * Sign-out revokes the session on the server (POST /auth/logout with the refresh token: its token family is revoked
 * and the access tokens already issued stop working), then forgets the tokens on this phone — locally even when the
 * call fails (no network, token already expired), so the member is always signed out here, and his sign-ups and
 * check-ins remembered on this phone (utils/remembered.js) with them.
 */
const config = require('../config')
const request = require('./request')
const session = require('./session')
const remembered = require('./remembered')

// develop only: sign in as a demo member against a development service, which accepts `dev:<openid>`
// codes instead of asking WeChat (production refuses them): wx.setStorageSync('dev.openid', 'demo-member-1')
const DEV_OPENID_KEY = 'dev.openid'

function devCode() {
  if (config.envVersion() !== 'develop') return null
  const openid = wx.getStorageSync(DEV_OPENID_KEY)
  return openid ? `dev:${openid}` : null
}

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (result) => (result.code ? resolve(result.code)
        : reject(new request.ApiError({ code: 'wechat_login_failed', message: '微信登录失败，请稍后重试' }))),
      fail: () => reject(new request.ApiError({ code: 'wechat_login_failed', message: '微信登录失败，请稍后重试' })),
    })
  })
}

/** Resolves with the session: {access_token, refresh_token, member, needs_binding}. */
async function signIn(options = {}) {
  const code = devCode() || (await wxLogin())
  const login = await request.post('/auth/wechat', { code }, { auth: false, ...options })
  return session.save(login)
}

async function bind(name, phone, options = {}) {
  const login = await request.post('/auth/bind', { name: name.trim(), phone: phone.trim() },
    { fieldLabels: { name: '姓名', phone: '手机号' }, ...options })
  return session.save(login)
}

/** POST /auth/logout carrying the refresh token (not the access token); never refreshes, retries or shows errors. */
function revokeOnServer(refreshToken) {
  return new Promise((resolve) => {
    wx.request({
      url: config.apiUrl('/auth/logout'), method: 'POST', data: {}, dataType: 'json', timeout: 5000,
      header: { 'Content-Type': 'application/json', Authorization: `Bearer ${refreshToken}` },
      success: (response) => resolve(response.statusCode === 200), fail: () => resolve(false),
    })
  })
}

/** Resolves true when the server revoked the session; the phone forgets it either way. */
async function signOut() {
  const refreshToken = session.refreshToken()
  let revoked = false
  try {
    revoked = refreshToken ? await revokeOnServer(refreshToken) : false
  } catch (error) {
    revoked = false // a runtime without wx.request: still signed out here
  } finally {
    session.clear()
    remembered.forget() // a shared phone: nothing of this member's is left for the next
  }
  return revoked
}

function isSignedIn() {
  const current = session.read()
  return Boolean(current && current.access_token && !current.needs_binding)
}

/** A mainland mobile number as the roster keeps it: 11 digits starting with 1. */
function validPhone(phone) {
  return /^1\d{10}$/.test(String(phone || '').trim())
}

module.exports = { DEV_OPENID_KEY, signIn, bind, signOut, isSignedIn, validPhone }
