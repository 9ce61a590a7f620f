/**
 * The one way the mini-program talks to the API.
 *
 * - Adds `Authorization: Bearer <access token>` from the session.
 * - Reads the envelope {code, message, data}: resolves with `data` when code is "ok" and the status is 2xx
 *   (wx.request "succeeds" for any status, so both are read), otherwise rejects with an ApiError.
 * - Shows the server's Chinese message (toast; a dialog for field errors) unless `showError: false`.
 * - On 401 refreshes the token pair once (one refresh at a time, shared by concurrent requests) and sends
 *   the request again: a 401 means the server did nothing, so this is safe for any method. A refresh that meets
 *   a network failure or 502/503/504 is sent again with the same refresh token (the API accepts it again for a
 *   short grace after rotating it, as its answer may have been lost); one that never gets through keeps the
 *   session and fails the request as a network error. Only a refusal from the server ends the session.
 * - Retries network failures and 502/503/504 only for idempotent requests: GET, and writes that carry an
 *   Idempotency-Key (check-in, check-out, self-reports and their resubmission, orders), with the same key every time.
 */
const config = require('../config')
const session = require('./session')
const errors = require('./errors')

const MAX_RETRIES = 2
const RETRY_DELAYS_MS = [400, 1200]
const RETRYABLE_STATUS = new Set([502, 503, 504])
const TIMEOUT_MS = 15000

class ApiError extends Error {
  constructor({ code, message, status = 0, data = null, requestId = null }) {
    super(message || errors.FALLBACK_MESSAGE)
    this.name = 'ApiError'
    this.code = code
    this.status = status
    this.data = data
    this.requestId = requestId
  }
}

const handlers = { onSignedOut: null, onBindingRequired: null }
let refreshing = null
let delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The app registers where to send a member whose session ended or who still has to bind. */
function setHandlers(next) {
  Object.assign(handlers, next)
}

/** Tests replace the back-off wait. */
function setDelay(fn) {
  delay = fn
}

/** A fresh Idempotency-Key: 8–64 of [A-Za-z0-9_-], as the API requires. */
function newIdempotencyKey() {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  let key = 'mp' + Date.now().toString(36) + '-'
  for (let i = 0; i < 20; i += 1) key += alphabet[Math.floor(Math.random() * alphabet.length)]
  return key
}

function queryString(query) {
  const pairs = Object.keys(query || {})
    .filter((name) => query[name] !== undefined && query[name] !== null && query[name] !== '')
    .map((name) => `${encodeURIComponent(name)}=${encodeURIComponent(query[name])}`)
  return pairs.length ? '?' + pairs.join('&') : ''
}

function send({ url, method, data, header }) {
  return new Promise((resolve, reject) => {
    wx.request({
      url, method, data, header, timeout: TIMEOUT_MS, dataType: 'json',
      success: resolve,
      fail: (failure) => reject(new ApiError({ code: 'network_error', message: '网络不稳定，请检查网络后重试',
        data: { errMsg: failure && failure.errMsg } })),
    })
  })
}

function errorFrom(response) {
  const body = response.data && typeof response.data === 'object' ? response.data : {}
  const status = response.statusCode
  if (body.code && body.code !== 'ok') {
    return new ApiError({ code: body.code, message: body.message, status, data: body.data,
      requestId: body.request_id })
  }
  const code = status >= 500 ? 'server_error' : 'bad_response'
  return new ApiError({ code, message: status >= 500 ? '服务暂时不可用，请稍后再试' : errors.FALLBACK_MESSAGE, status })
}

function showError(error, labels) {
  const { title, content } = errors.describe(error, labels)
  if (error.code === 'validation_failed' || content.length > 14) {
    wx.showModal({ title, content, showCancel: false, confirmText: '知道了' })
  } else {
    wx.showToast({ title: content, icon: 'none', duration: 2500 })
  }
}

/**
 * POST /auth/refresh with the refresh token; one in flight at a time. Resolves true when renewed, false when the
 * server refused (the session is over); rejects with the last ApiError when the server could not be reached.
 */
function refreshSession() {
  const refreshToken = session.refreshToken()
  if (!refreshToken) return Promise.resolve(false)
  if (!refreshing) {
    refreshing = sendRefresh(refreshToken).finally(() => { refreshing = null })
  }
  return refreshing
}

/** Always the same token: a retry within the API's grace gets a fresh pair even if the first answer was lost. */
async function sendRefresh(refreshToken) {
  for (let attempt = 0; ; attempt += 1) {
    let failure
    try {
      const response = await send({ url: config.apiUrl('/auth/refresh'), method: 'POST', data: {},
        header: { 'Content-Type': 'application/json', Authorization: `Bearer ${refreshToken}` } })
      if (response.statusCode === 200 && response.data && response.data.code === 'ok') {
        session.save(response.data.data)
        return true
      }
      if (!RETRYABLE_STATUS.has(response.statusCode)) return false
      failure = errorFrom(response)
    } catch (networkError) {
      failure = networkError
    }
    if (attempt >= MAX_RETRIES) throw failure
    await delay(RETRY_DELAYS_MS[attempt])
  }
}

function headersFor(options) {
  const header = { 'Content-Type': 'application/json', Accept: 'application/json' }
  const token = options.auth === false ? null : session.accessToken()
  if (token) header.Authorization = `Bearer ${token}`
  if (options.idempotencyKey) header['Idempotency-Key'] = options.idempotencyKey
  return header
}

/** A 401 that a refresh did not cure: the session is over, so it is forgotten and the member sent to sign in. */
function endSession(error) {
  session.clear()
  if (handlers.onSignedOut) handlers.onSignedOut(error)
}

function afterFailure(error, options) {
  if (error.status === 401 && options.auth !== false) {
    endSession(error)
  } else if (error.code === 'binding_required' && handlers.onBindingRequired) {
    handlers.onBindingRequired(error)
  }
  if (options.showError !== false) showError(error, options.fieldLabels)
  return error
}

/**
 * request({path, method, query, data, idempotencyKey, auth, showError, fieldLabels}) → Promise<data>.
 * `path` is below /api/v1, e.g. '/me'.
 */
async function request(options) {
  const method = (options.method || 'GET').toUpperCase()
  const idempotent = method === 'GET' || Boolean(options.idempotencyKey)
  const url = config.apiUrl(options.path) + queryString(options.query)
  let refreshed = false
  for (let attempt = 0; ; attempt += 1) {
    let response
    try {
      response = await send({ url, method, data: options.data, header: headersFor(options) })
    } catch (networkError) {
      if (idempotent && attempt < MAX_RETRIES) { await delay(RETRY_DELAYS_MS[attempt]); continue }
      throw afterFailure(networkError, options)
    }
    const body = response.data
    if (response.statusCode >= 200 && response.statusCode < 300 && body && body.code === 'ok') return body.data
    if (response.statusCode === 401 && options.auth !== false && !refreshed) {
      refreshed = true
      let renewed
      try {
        renewed = await refreshSession()
      } catch (unreachable) {
        throw afterFailure(unreachable, options) // not a refusal: the session and its refresh token are kept
      }
      if (renewed) { attempt -= 1; continue }
    }
    if (RETRYABLE_STATUS.has(response.statusCode) && idempotent && attempt < MAX_RETRIES) {
      await delay(RETRY_DELAYS_MS[attempt])
      continue
    }
    throw afterFailure(errorFrom(response), options)
  }
}

const get = (path, query, options = {}) => request({ ...options, path, query, method: 'GET' })
const post = (path, data, options = {}) => request({ ...options, path, data, method: 'POST' })
const del = (path, options = {}) => request({ ...options, path, method: 'DELETE' })

module.exports = {
  ApiError, request, get, post, del, setHandlers, setDelay, newIdempotencyKey, refreshSession, endSession, showError,
  queryString, MAX_RETRIES,
}
