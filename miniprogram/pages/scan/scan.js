/**
 * 扫码签到 / 签退. Also opened by a mini-program code whose `scene` is the token (then it asks which action).
 * Every failure ends in a dialog that says what happened and what to do (utils/errors.js).
 */
const guard = require('../../utils/guard')
const checkin = require('../../utils/checkin')
const errors = require('../../utils/errors')

Component({
  data: { busy: false, result: null, pendingCode: null },
  methods: {
    onLoad(options) {
      const code = options && options.scene ? checkin.parseCheckinCode(options.scene) : null
      if (code) this.setData({ pendingCode: code })
    },
    onShow() {
      guard.requireSignIn()
    },
    checkIn() { return this.run('in') },
    checkOut() { return this.run('out') },
    async run(action) {
      if (this.data.busy) return
      this.setData({ busy: true, result: null })
      try {
        const code = this.data.pendingCode || (await checkin.scan())
        const fix = await checkin.locate()
        wx.showLoading({ title: action === 'in' ? '正在签到' : '正在签退', mask: true })
        const done = action === 'in' ? await checkin.checkIn(code, fix) : await checkin.checkOut(code, fix)
        wx.hideLoading()
        this.setData({ result: { ok: true, ...checkin.successMessage(action, done) }, pendingCode: null })
      } catch (error) {
        wx.hideLoading()
        this.setData({ pendingCode: null })
        if (error.code !== 'cancelled') this.showFailure(error)
      } finally {
        this.setData({ busy: false })
      }
    },
    showFailure(error) {
      const { title, content } = errors.describe(error)
      this.setData({ result: { ok: false, title, content, code: error.code } })
      const toSettings = error.code === 'location_denied'
      wx.showModal({
        title, content, showCancel: toSettings, confirmText: toSettings ? '去设置' : '知道了',
        success: (answer) => { if (toSettings && answer.confirm) wx.openSetting() },
      })
    },
  },
})
