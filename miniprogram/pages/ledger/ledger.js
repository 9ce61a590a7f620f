/**
 * 积分明细: my ledger entries for a period, newest first, each with its reason; more on scroll (utils/paging.js:
 * choosing another period while a page loads drops that page).
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const periods = require('../../utils/periods')
const paging = require('../../utils/paging')

const PAGE_SIZE = 20

Component({
  data: { memberId: null, period: '', periodOptions: [], rows: [], page: 0, total: 0, loading: false, done: false,
    failed: false },
  methods: {
    async onLoad() {
      if (!guard.requireSignIn()) return
      const now = new Date()
      this.setData({ period: periods.yearKey(now), periodOptions: [
        { key: periods.monthKey(now), label: '本月' }, { key: periods.quarterKey(now), label: '本季度' },
        { key: periods.yearKey(now), label: '本年度' }] })
      const me = await request.get('/me')
      this.setData({ memberId: me.member ? me.member.id : null })
      await this.reload()
    },
    choosePeriod(event) {
      this.setData({ period: event.currentTarget.dataset.key })
      return this.reload()
    },
    reload() {
      paging.reset(this)
      return this.more()
    },
    onReachBottom() { return this.more() },
    more() {
      if (!this.data.memberId) return Promise.resolve()
      return paging.loadMore(this, (number) => request.get(`/members/${this.data.memberId}/ledger`,
        { period: this.data.period, page: number, page_size: PAGE_SIZE }), views.ledgerRow)
    },
  },
})
