/** 积分超市: what my community and the regions above offer, cheapest first, with my balance and open orders. */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const market = require('../../utils/market')
const format = require('../../utils/format')

Component({
  data: { loading: true, failed: false, items: [], balance: '0', openOrders: 0 },
  methods: {
    onShow() {
      if (guard.requireSignIn()) return this.load()
      return Promise.resolve()
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh())
    },
    async load() {
      try {
        const [me, page] = await Promise.all([request.get('/me'), market.listItems()])
        this.setData({ loading: false, failed: false, items: page.items.map(market.itemView),
          balance: format.points(me.points.redeemable), openOrders: me.points.open_orders || 0 })
      } catch (error) {
        this.setData({ loading: false, failed: true })
      }
    },
    openItem(event) {
      wx.navigateTo({ url: `/pages/market-item/market-item?id=${event.currentTarget.dataset.id}` })
    },
    goOrders() { wx.navigateTo({ url: '/pages/orders/orders' }) },
  },
})
