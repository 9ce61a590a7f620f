/** 业务之星 (per quarter, published winners) and 流动红旗 (holders per scope, per month or quarter). */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const periods = require('../../utils/periods')

Component({
  data: { tab: 'stars', period: '', stars: [], flags: [], loading: true },
  methods: {
    onLoad() {
      this.setData({ period: periods.previousQuarterKey() })
      if (guard.requireSignIn()) return this.load()
      return Promise.resolve()
    },
    switchTab(event) {
      this.setData({ tab: event.currentTarget.dataset.tab })
      return this.load()
    },
    shiftQuarter(event) {
      const step = Number(event.currentTarget.dataset.step)
      const [year, quarter] = this.data.period.split('-Q').map(Number)
      const index = year * 4 + (quarter - 1) + step
      this.setData({ period: `${Math.floor(index / 4)}-Q${(index % 4) + 1}` })
      return this.load()
    },
    async load() {
      this.setData({ loading: true })
      try {
        if (this.data.tab === 'stars') {
          const page = await request.get('/stars', { period: this.data.period, page_size: 100 })
          this.setData({ stars: page.items.map(views.starRow) })
        } else {
          const list = await request.get('/red-flags', { period: this.data.period })
          this.setData({ flags: list.items.map(views.redFlagRow) })
        }
      } finally {
        this.setData({ loading: false })
      }
    },
  },
})
