/**
 * 我的兑换: my orders by state (待取货 first), newest first, more on scroll. An open order shows its pick-up code
 * large, for the person at the desk to read, and may be cancelled before pick-up (the points come back).
 */
const guard = require('../../utils/guard')
const market = require('../../utils/market')
const paging = require('../../utils/paging')

Component({
  data: { tabs: market.STATE_TABS, state: 'placed', rows: [], page: 0, total: 0, loading: false, done: false,
    failed: false, busy: false },
  methods: {
    onShow() {
      if (guard.requireSignIn()) return this.reload()
      return Promise.resolve()
    },
    onPullDownRefresh() {
      return this.reload().then(() => wx.stopPullDownRefresh())
    },
    chooseState(event) {
      this.setData({ state: event.currentTarget.dataset.key })
      return this.reload()
    },
    reload() {
      paging.reset(this)
      return this.more()
    },
    onReachBottom() { return this.more() },
    more() {
      return paging.loadMore(this, (number) => market.myOrders(this.data.state || undefined, number),
        market.orderView)
    },
    cancel(event) {
      const id = Number(event.currentTarget.dataset.id)
      const row = this.data.rows.find((candidate) => candidate.id === id)
      if (!row || this.data.busy) return Promise.resolve()
      return new Promise((resolve) => {
        wx.showModal({ title: '取消兑换', content: `取消“${row.item}”的兑换？${row.points} 公益积分将退回。`,
          confirmText: '取消兑换', cancelText: '不取消',
          success: (answer) => resolve(answer.confirm ? this.doCancel(id) : null) })
      })
    },
    async doCancel(id) {
      this.setData({ busy: true })
      try {
        await market.cancelOrder(id)
        wx.showToast({ title: '已取消，积分已退回', icon: 'none' })
      } catch (error) {
        // the request module explains the code (order_not_open: already picked up, cancelled or expired)
      } finally {
        this.setData({ busy: false })
      }
      return this.reload()
    },
    goMarket() { wx.navigateTo({ url: '/pages/market/market' }) },
  },
})
