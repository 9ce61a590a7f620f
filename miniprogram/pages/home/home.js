const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')

Component({
  data: { loading: true, failed: false, view: null },
  methods: {
    onShow() {
      if (guard.requireSignIn()) this.load()
    },
    onPullDownRefresh() {
      this.load().then(() => wx.stopPullDownRefresh())
    },
    async load() {
      try {
        const me = await request.get('/me')
        this.setData({ loading: false, failed: false, view: views.home(me) })
      } catch (error) {
        this.setData({ loading: false, failed: true })
      }
    },
    goLedger() { wx.navigateTo({ url: '/pages/ledger/ledger' }) },
    goMarket() { wx.navigateTo({ url: this.data.view && this.data.view.openOrders ? '/pages/orders/orders' : '/pages/market/market' }) },
    goReport() { wx.navigateTo({ url: '/pages/report/report' }) },
    goBoards() { wx.switchTab({ url: '/pages/boards/boards' }) },
    goScan() { wx.switchTab({ url: '/pages/scan/scan' }) },
  },
})
