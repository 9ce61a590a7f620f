/**
 * 自主上报: a self-reported service with evidence, pending until the approver the policy names decides.
 * Submitting carries one Idempotency-Key per filled-in form, so a retry on a weak network cannot file it twice.
 * Below the form: my recent reports with their status and the approver's comment.
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const evidence = require('../../utils/evidence')
const format = require('../../utils/format')

const LABELS = { item_code: '服务项目', occurred_at: '服务时间', hours: '时长', description: '服务内容', evidence: '佐证材料' }

function today() {
  return format.date(new Date().toISOString())
}

Component({
  data: {
    items: [], itemIndex: 0, day: '', time: '09:00', hours: '', description: '', links: [], link: '',
    canUpload: false, busy: false, records: [], key: '',
  },
  methods: {
    onLoad() {
      this.setData({ day: today(), canUpload: evidence.uploadAvailable(), key: request.newIdempotencyKey() })
    },
    onShow() {
      if (guard.requireSignIn()) return Promise.all([this.loadItems(), this.loadRecords()])
      return Promise.resolve()
    },
    async loadItems() {
      const policy = await request.get('/policy')
      this.setData({ items: views.reportableItems(policy) })
    },
    async loadRecords() {
      const page = await request.get('/records', { page_size: 20 })
      this.setData({ records: page.items.map(views.recordRow) })
    },
    onItem(event) { this.setData({ itemIndex: Number(event.detail.value) }) },
    onDay(event) { this.setData({ day: event.detail.value }) },
    onTime(event) { this.setData({ time: event.detail.value }) },
    onHours(event) { this.setData({ hours: event.detail.value }) },
    onDescription(event) { this.setData({ description: event.detail.value }) },
    onLink(event) { this.setData({ link: event.detail.value }) },
    addLink() {
      const link = this.data.link.trim()
      if (!evidence.isEvidenceLink(link)) {
        wx.showToast({ title: '请填写 https 开头的链接', icon: 'none' })
        return
      }
      this.addEvidence([link])
      this.setData({ link: '' })
    },
    addEvidence(links) {
      this.setData({ links: this.data.links.concat(links).slice(0, evidence.MAX_EVIDENCE) })
    },
    removeLink(event) {
      const index = Number(event.currentTarget.dataset.index)
      this.setData({ links: this.data.links.filter((_, i) => i !== index) })
    },
    async addPhotos() {
      try {
        const paths = await evidence.choosePhotos(evidence.MAX_EVIDENCE - this.data.links.length)
        wx.showLoading({ title: '正在上传', mask: true })
        const links = []
        for (const path of paths) links.push(await evidence.uploadPhoto(path))
        this.addEvidence(links)
      } catch (error) {
        if (error.code !== 'cancelled') request.showError(error)
      } finally {
        wx.hideLoading()
      }
    },
    body() {
      const item = this.data.items[this.data.itemIndex]
      const body = { item_code: item.code, occurred_at: `${this.data.day}T${this.data.time}:00+08:00`,
        description: this.data.description.trim(), evidence: this.data.links }
      if (item.hours) body.hours = Number(this.data.hours)
      return body
    },
    async submit() {
      if (this.data.busy || !this.data.items.length) return
      if (!this.data.description.trim()) {
        wx.showToast({ title: '请填写服务内容', icon: 'none' })
        return
      }
      this.setData({ busy: true })
      try {
        await request.post('/records', this.body(), { idempotencyKey: this.data.key, fieldLabels: LABELS })
        wx.showModal({ title: '已提交', content: '上报已提交，审核通过后计入积分。', showCancel: false, confirmText: '好的' })
        this.setData({ description: '', hours: '', links: [], key: request.newIdempotencyKey() })
        await this.loadRecords()
      } catch (error) {
        // the request module shows the field errors
      } finally {
        this.setData({ busy: false })
      }
    },
  },
})
