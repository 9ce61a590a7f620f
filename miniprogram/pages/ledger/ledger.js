/** 积分明细: my ledger entries for a period, newest first, each with its reason; more on scroll. */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const periods = require('../../utils/periods')

const PAGE_SIZE = 20

Component({
  data: { memberId: null, period: '', periodOptions: [], rows: [], page: 0, total: 0, loading: false, done: false },
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
      this.setData({ rows: [], page: 0, total: 0, done: false })
      return this.more()
    },
    onReachBottom() { return this.more() },
    async more() {
      if (this.data.loading || this.data.done || !this.data.memberId) return
      this.setData({ loading: true })
      try {
        const page = await request.get(`/members/${this.data.memberId}/ledger`,
          { period: this.data.period, page: this.data.page + 1, page_size: PAGE_SIZE })
        const rows = this.data.rows.concat(page.items.map(views.ledgerRow))
        this.setData({ rows, page: page.page, total: page.total, done: rows.length >= page.total })
      } finally {
        this.setData({ loading: false })
      }
    },
  },
})
