/**
 * A stand-in for the `wx` global, at the boundary only: storage in memory, wx.request answered by the
 * test's `handle(options)` (return {statusCode, data} or {fail: {errMsg}}), the native pickers answered
 * from `answers` (a value, or a function of the call), and every toast, dialog, upload, subscribe request and
 * navigation recorded. The modules under test are the real ones.
 */
const API = 'http://api.test'

function ok(data, statusCode = 200) {
  return { statusCode, data: { code: 'ok', message: '成功', data, request_id: 'r' } }
}

function failure(statusCode, code, message, data = null) {
  return { statusCode, data: { code, message, data, request_id: 'r' } }
}

function answer(options, value) {
  if (value && value.fail) options.fail && options.fail(value.fail)
  else options.success && options.success(value)
  options.complete && options.complete()
}

function createWx({ handle = () => ok(null), envVersion = 'develop', storage = {}, answers = {} } = {}) {
  const store = new Map(Object.entries({ 'dev.apiBase': API, ...storage }))
  const calls = { requests: [], toasts: [], modals: [], navigations: [], uploads: [], subscribes: [] }
  const clone = (value) => (value === undefined ? value : JSON.parse(JSON.stringify(value)))
  const navigate = (kind) => (options) => calls.navigations.push({ kind, url: options.url })
  const wx = {
    calls,
    answers: { modalConfirm: true, ...answers },
    getAccountInfoSync: () => ({ miniProgram: { envVersion, appId: 'touristappid' } }),
    getStorageSync: (key) => (store.has(key) ? clone(store.get(key)) : ''),
    setStorageSync: (key, value) => store.set(key, clone(value)),
    removeStorageSync: (key) => store.delete(key),
    request(options) {
      calls.requests.push(options)
      Promise.resolve().then(() => handle(options, calls.requests.length)).then((result) => {
        if (result && result.fail) options.fail(result.fail)
        else options.success({ header: {}, ...result })
      })
    },
    showToast: (options) => calls.toasts.push(options),
    showModal(options) {
      calls.modals.push(options)
      const confirm = wx.answers.modalConfirm
      Promise.resolve().then(() => options.success && options.success({ confirm, cancel: !confirm }))
    },
    showLoading() {},
    hideLoading() {},
    stopPullDownRefresh() {},
    openSetting: () => calls.navigations.push({ kind: 'openSetting' }),
    reLaunch: navigate('reLaunch'),
    switchTab: navigate('switchTab'),
    navigateTo: navigate('navigateTo'),
    login: (options) => answer(options, wx.answers.login || { code: 'wx-code-1' }),
    scanCode: (options) => answer(options, wx.answers.scanCode || { fail: { errMsg: 'scanCode:fail cancel' } }),
    getLocation: (options) => answer(options, wx.answers.getLocation
      || { latitude: 35.4154, longitude: 116.5872, accuracy: 30 }),
    chooseMedia: (options) => answer(options, wx.answers.chooseMedia || { fail: { errMsg: 'cancel' } }),
    uploadFile(options) {
      calls.uploads.push(options)
      const given = wx.answers.uploadFile
      answer(options, typeof given === 'function' ? given(options, calls.uploads.length) : given)
    },
    requestSubscribeMessage(options) {
      calls.subscribes.push(options)
      const given = wx.answers.requestSubscribeMessage
      answer(options, typeof given === 'function' ? given(options) : given || { fail: { errMsg: 'cancel' } })
    },
    previewImage: (options) => calls.navigations.push({ kind: 'previewImage', url: options.current }),
    navigateBack: () => calls.navigations.push({ kind: 'navigateBack' }),
  }
  return wx
}

/** Installs a fresh wx as the global and returns it. */
function installWx(options) {
  const wx = createWx(options)
  globalThis.wx = wx
  return wx
}

function signedIn(extra = {}) {
  return { session: { access_token: 'access-1', refresh_token: 'refresh-1', needs_binding: false,
    member: { id: 58, name: '闫思振' }, ...extra } }
}

/** The path below /api/v1 and the query of a recorded request. */
function route(options) {
  const url = new URL(options.url)
  return { method: options.method, path: url.pathname.replace(/^\/api\/v1/, ''), query: Object.fromEntries(url.searchParams) }
}

module.exports = { API, ok, failure, createWx, installWx, signedIn, route }
