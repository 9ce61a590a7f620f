/**
 * The `wx` the client's modules meet in Node for the contract test: wx.request over fetch (JSON in and out,
 * any HTTP status reported as success, as WeChat does), storage in memory, wx.login answered with a code
 * the fake WeChat issued, and the phone's scanner and position set by the test.
 */
function nodeWx({ apiBase, wechatBase, openid }) {
  const store = new Map([['dev.apiBase', apiBase]])
  const clone = (value) => (value === undefined ? value : JSON.parse(JSON.stringify(value)))
  const wx = {
    phone: { openid, location: null, scanned: null },
    getAccountInfoSync: () => ({ miniProgram: { envVersion: 'develop', appId: 'touristappid' } }),
    getStorageSync: (key) => (store.has(key) ? clone(store.get(key)) : ''),
    setStorageSync: (key, value) => store.set(key, clone(value)),
    removeStorageSync: (key) => store.delete(key),
    request({ url, method = 'GET', data, header = {}, timeout = 15000, success, fail }) {
      const body = method === 'GET' || data === undefined ? undefined : JSON.stringify(data)
      fetch(url, { method, headers: header, body, signal: AbortSignal.timeout(timeout) })
        .then(async (response) => {
          const text = await response.text()
          let parsed = text
          try { parsed = JSON.parse(text) } catch (error) { /* wx leaves non-JSON as text */ }
          success({ statusCode: response.status, data: parsed, header: Object.fromEntries(response.headers) })
        }, (error) => fail({ errMsg: `request:fail ${error.message}` }))
    },
    login({ success, fail }) {
      fetch(`${wechatBase}/test/issue-code?openid=${encodeURIComponent(wx.phone.openid)}`, { method: 'POST' })
        .then((response) => response.json()).then(({ code }) => success({ code }), () => fail({ errMsg: 'login:fail' }))
    },
    getLocation({ success }) {
      const { lat, lng } = wx.phone.location
      success({ latitude: lat, longitude: lng, accuracy: 20 })
    },
    scanCode({ success }) {
      success({ result: wx.phone.scanned, scanType: 'QR_CODE' })
    },
    showToast() {},
    showModal(options) { if (options.success) options.success({ confirm: true }) },
    showLoading() {},
    hideLoading() {},
  }
  return wx
}

module.exports = { nodeWx }
