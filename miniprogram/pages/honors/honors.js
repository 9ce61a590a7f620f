/**
 * 业务之星 (per quarter, published winners) and 流动红旗 (holders per scope, per month or quarter as the policy's
 * `red_flag.period` says, read from GET /policy when the flags are first shown). Each tab keeps its own period,
 * the closed one before the current one at first.
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const periods = require('../../utils/periods')

const UNITS = { quarter: '季', month: '月' }

Component({
  data: { tab: 'stars', period: '', unit: UNITS.quarter, kinds: { stars: 'quarter', flags: '' },
    chosen: { stars: '', flags: '' }, stars: [], flags: [], loading: true },
  methods: {
    onLoad() {
      this.setData({ 'chosen.stars': periods.previousQuarterKey() })
      if (guard.requireSignIn()) return this.load()
      return Promise.resolve()
    },
    switchTab(event) {
      this.setData({ tab: event.currentTarget.dataset.tab })
      return this.load()
    },
    shiftPeriod(event) {
      const { tab } = this.data
      const step = Number(event.currentTarget.dataset.step)
      this.setData({ [`chosen.${tab}`]: periods.shiftKey(this.data.chosen[tab], step) })
      return this.load()
    },
    async flagKind() {
      if (!this.data.kinds.flags) {
        const kind = views.redFlagPeriodKind(await request.get('/policy'))
        this.setData({ 'kinds.flags': kind, 'chosen.flags': periods.previousKey(kind) })
      }
    },
    async load() {
      this.setData({ loading: true })
      try {
        const { tab } = this.data
        if (tab === 'flags') await this.flagKind()
        const period = this.data.chosen[tab]
        this.setData({ period, unit: UNITS[this.data.kinds[tab]] })
        if (tab === 'stars') {
          const page = await request.get('/stars', { period, page_size: 100 })
          this.setData({ stars: page.items.map(views.starRow) })
        } else {
          const list = await request.get('/red-flags', { period })
          this.setData({ flags: list.items.map(views.redFlagRow) })
        }
      } finally {
        this.setData({ loading: false })
      }
    },
  },
})
