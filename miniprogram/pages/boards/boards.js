/**
 * 排行榜: members ranked in a scope I belong to, for a period; ties share a rank; my own place on top. The periods
 * (本月, 本季度, 本年度 in Shanghai time) are computed on every show, so an app left open across a month's or a
 * quarter's end offers the new ones; the tab chosen stays chosen.
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const periods = require('../../utils/periods')

Component({
  data: { scopes: [], scopeIndex: 0, periods: [], period: '', board: null, loading: true, memberId: null },
  methods: {
    async onShow() {
      if (!guard.requireSignIn()) return
      if (!this.data.scopes.length) {
        const me = await request.get('/me')
        this.setData({ scopes: views.boardScopes(me), memberId: me.member ? me.member.id : null })
      }
      this.offerPeriods()
      await this.load()
    },
    offerPeriods() {
      const offered = periods.boardPeriods()
      const chosen = this.data.periods.findIndex((period) => period.key === this.data.period)
      this.setData({ periods: offered, period: offered[chosen < 0 ? 1 : chosen].key }) // 本季度 at first
    },
    onScope(event) {
      this.setData({ scopeIndex: Number(event.detail.value) })
      return this.load()
    },
    choosePeriod(event) {
      this.setData({ period: event.currentTarget.dataset.key })
      return this.load()
    },
    async load() {
      this.setData({ loading: true })
      try {
        const board = await request.get('/leaderboards', { subject: 'member',
          scope: this.data.scopes[this.data.scopeIndex].scope, period: this.data.period, page_size: 50 })
        this.setData({ board: views.leaderboard(board, this.data.memberId) })
      } finally {
        this.setData({ loading: false })
      }
    },
    goHonors() { wx.navigateTo({ url: '/pages/honors/honors' }) },
  },
})
