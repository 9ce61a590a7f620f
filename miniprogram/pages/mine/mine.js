const request = require('../../utils/request')
const guard = require('../../utils/guard')
const auth = require('../../utils/auth')

Component({
  data: { member: null, openOrders: 0, unread: 0 },
  methods: {
    async onShow() {
      if (!guard.requireSignIn()) return
      const me = await request.get('/me')
      const points = me.points || {}
      this.setData({ member: me.member, openOrders: points.open_orders || 0, unread: points.unread_messages || 0 })
    },
    goMarket() { wx.navigateTo({ url: '/pages/market/market' }) },
    goOrders() { wx.navigateTo({ url: '/pages/orders/orders' }) },
    goMessages() { wx.navigateTo({ url: '/pages/messages/messages' }) },
    goLedger() { wx.navigateTo({ url: '/pages/ledger/ledger' }) },
    goReport() { wx.navigateTo({ url: '/pages/report/report' }) },
    goHonors() { wx.navigateTo({ url: '/pages/honors/honors' }) },
    signOut() {
      wx.showModal({
        title: '退出登录', content: '退出后需重新用微信登录。', confirmText: '退出',
        success: (answer) => {
          if (!answer.confirm) return
          // best effort: the server revokes the session when it can; this phone forgets it either way
          return auth.signOut().then(() => wx.reLaunch({ url: '/pages/login/login' }))
        },
      })
    },
  },
})
