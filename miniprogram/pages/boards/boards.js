/** 排行榜: members ranked in a scope I belong to, for a period; ties share a rank; my own place on top. */
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
        const offered = periods.boardPeriods()
        this.setData({ scopes: views.boardScopes(me), periods: offered, period: offered[1].key,
          memberId: me.member ? me.member.id : null })
      }
      await this.load()
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
