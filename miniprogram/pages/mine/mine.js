const request = require('../../utils/request')
const guard = require('../../utils/guard')
const auth = require('../../utils/auth')

Component({
  data: { member: null },
  methods: {
    async onShow() {
      if (!guard.requireSignIn()) return
      const me = await request.get('/me')
      this.setData({ member: me.member })
    },
    goLedger() { wx.navigateTo({ url: '/pages/ledger/ledger' }) },
    goReport() { wx.navigateTo({ url: '/pages/report/report' }) },
    goHonors() { wx.navigateTo({ url: '/pages/honors/honors' }) },
    signOut() {
      wx.showModal({
        title: '退出登录', content: '退出后需重新用微信登录。', confirmText: '退出',
        success: (answer) => {
          if (!answer.confirm) return
          auth.signOut()
          wx.reLaunch({ url: '/pages/login/login' })
        },
      })
    },
  },
})
