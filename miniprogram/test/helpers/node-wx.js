/**
 * The `wx` the client's modules meet in Node for the contract test: wx.request over fetch (JSON in and out,
 * any HTTP status reported as success, as WeChat does), wx.uploadFile as a multipart POST of a local file (the
 * answer's body left as text, as WeChat does), storage in memory, wx.login answered with a code the fake WeChat
 * issued, and the phone's scanner, position and photo picker set by the test.
 */
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')

/** A real PNG of a plain colour, what a phone's camera stands for here. */
function pngBytes(width = 96, height = 64) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
    const length = Buffer.alloc(4)
    length.writeUInt32BE(data.length)
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(zlib.crc32(body))
    return Buffer.concat([length, body, crc])
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header.set([8, 2, 0, 0, 0], 8) // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3, 0xc8)])
  const pixels = zlib.deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header),
    chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))])
}

function nodeWx({ apiBase, wechatBase, openid }) {
  const store = new Map([['dev.apiBase', apiBase]])
  const clone = (value) => (value === undefined ? value : JSON.parse(JSON.stringify(value)))
  const wx = {
    phone: { openid, location: null, scanned: null, photos: [] },
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
    chooseMedia({ success, fail }) {
      if (wx.phone.photos.length) success({ tempFiles: wx.phone.photos.map((tempFilePath) => ({ tempFilePath })) })
      else fail({ errMsg: 'chooseMedia:fail cancel' })
    },
    uploadFile({ url, filePath, name, header = {}, success, fail }) {
      const form = new FormData()
      form.append(name, new Blob([fs.readFileSync(filePath)]), path.basename(filePath))
      fetch(url, { method: 'POST', headers: header, body: form, signal: AbortSignal.timeout(15000) })
        .then(async (response) => success({ statusCode: response.status, data: await response.text() }),
          (error) => fail({ errMsg: `uploadFile:fail ${error.message}` }))
    },
    showToast() {},
    showModal(options) { if (options.success) options.success({ confirm: true }) },
    showLoading() {},
    hideLoading() {},
  }
  return wx
}

module.exports = { nodeWx, pngBytes }
