/**
 * 自主上报: a self-reported service with evidence, pending until the approver the policy names decides.
 * Submitting carries one Idempotency-Key per filled-in form, so a retry on a weak network cannot file it twice; a
 * form edited after a lost answer is another report and takes a new key (the API refuses a key sent with another body).
 * Photos are uploaded to the API (POST /uploads/evidence) and their links go into the evidence; typed https links
 * are accepted too. After submitting, the member is offered a notification of the approver's decision (订阅消息).
 * Below the form: my recent reports with their status and the approver's comment. A report sent back for more
 * information (needs_info) offers 补充材料: its description and evidence, to edit as when filing, resubmitted with
 * POST /records/{id}/resubmit under a key that follows the body in the same way.
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const evidence = require('../../utils/evidence')
const format = require('../../utils/format')
const notifications = require('../../utils/notifications')

const LABELS = { item_code: '服务项目', occurred_at: '服务时间', hours: '时长', description: '服务内容', evidence: '佐证材料' }
// The record being resubmitted: none while id is 0. Each form keeps its evidence, typed link and key in its own place.
const NO_FIX = { id: 0, item: '', comment: '', description: '', links: [], evidenceRows: [], link: '', key: '',
  keyBody: '' }

function today() {
  return format.date(new Date().toISOString())
}

/** 'fix' for the controls of the 补充材料 form (data-form="fix"), '' for the new report's. */
function formOf(event) {
  return event && event.currentTarget && event.currentTarget.dataset.form === 'fix' ? 'fix' : ''
}

Component({
  data: {
    items: [], itemIndex: 0, today: '', day: '', time: '09:00', hours: '', description: '', links: [], evidenceRows: [], link: '',
    canUpload: false, busy: false, records: [], key: '', keyBody: '', fix: NO_FIX,
  },
  methods: {
    onLoad() {
      this.setData({ today: today(), day: today(), canUpload: evidence.uploadAvailable(), key: request.newIdempotencyKey() })
    },
    onShow() {
      if (!guard.requireSignIn()) return Promise.resolve()
      notifications.loadTemplates().catch(() => {})
      return Promise.all([this.loadItems(), this.loadRecords()])
    },
    /** The data of a form ('' or 'fix') and the prefix of its paths for setData. */
    form(name) {
      return name ? { data: this.data.fix, path: 'fix.' } : { data: this.data, path: '' }
    },
    setLinks(links, name = '') {
      const { path } = this.form(name)
      this.setData({ [`${path}links`]: links,
        [`${path}evidenceRows`]: links.map((link) => ({ link, photo: evidence.isUploadedPhoto(link) })) })
    },
    /** One key per body: sent again unchanged (its answer lost) it keeps its key; edited, it takes a new one. */
    keyFor(name, body) {
      const { data, path } = this.form(name)
      const keyBody = JSON.stringify(body)
      if (data.keyBody && data.keyBody !== keyBody) this.setData({ [`${path}key`]: request.newIdempotencyKey() })
      this.setData({ [`${path}keyBody`]: keyBody })
      return this.form(name).data.key
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
    onLink(event) { this.setData({ [`${this.form(formOf(event)).path}link`]: event.detail.value }) },
    addLink(event) {
      const name = formOf(event)
      const { data, path } = this.form(name)
      const link = data.link.trim()
      if (!evidence.isEvidenceLink(link)) {
        wx.showToast({ title: '请填写 https 开头的链接', icon: 'none' })
        return
      }
      this.addEvidence([link], name)
      this.setData({ [`${path}link`]: '' })
    },
    addEvidence(links, name = '') {
      this.setLinks(this.form(name).data.links.concat(links).slice(0, evidence.MAX_EVIDENCE), name)
    },
    removeLink(event) {
      const name = formOf(event)
      const index = Number(event.currentTarget.dataset.index)
      this.setLinks(this.form(name).data.links.filter((_, i) => i !== index), name)
    },
    async addPhotos(event) {
      const name = formOf(event)
      const room = evidence.MAX_EVIDENCE - this.form(name).data.links.length
      if (room <= 0) {
        wx.showToast({ title: `佐证材料最多 ${evidence.MAX_EVIDENCE} 项`, icon: 'none' })
        return
      }
      let paths
      try {
        paths = await evidence.choosePhotos(room)
      } catch (error) {
        return // the member closed the picker
      }
      wx.showLoading({ title: '正在上传', mask: true })
      try {
        for (const path of paths) this.addEvidence([await evidence.uploadPhoto(path)], name) // each kept as it lands
      } catch (error) {
        wx.hideLoading()
        request.showError(error)
        return
      }
      wx.hideLoading()
    },
    previewPhoto(event) {
      const photos = this.form(formOf(event)).data.links.filter((link) => evidence.isUploadedPhoto(link))
      wx.previewImage({ urls: photos, current: event.currentTarget.dataset.link })
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
      const body = this.body()
      const key = this.keyFor('', body)
      this.setData({ busy: true })
      try {
        await request.post('/records', body, { idempotencyKey: key, fieldLabels: LABELS })
        this.setData({ description: '', hours: '', key: request.newIdempotencyKey(), keyBody: '' })
        this.setLinks([])
        await this.loadRecords()
        if (notifications.canOffer(notifications.REPORT_KEYS)) {
          await notifications.offerConsent({ title: '已提交', keys: notifications.REPORT_KEYS,
            content: '上报已提交，审核通过后计入积分。需要在审核有结果时收到微信通知吗？' })
        } else {
          wx.showModal({ title: '已提交', content: '上报已提交，审核通过后计入积分。', showCancel: false, confirmText: '好的' })
        }
      } catch (error) {
        // the request module shows the field errors
      } finally {
        this.setData({ busy: false })
      }
    },
    /** 补充材料 on a record sent back: its description and evidence as filed, to edit. */
    openFix(event) {
      const record = this.data.records.find((row) => row.id === Number(event.currentTarget.dataset.id))
      if (!record || !record.canResubmit) return
      this.setData({ fix: { ...NO_FIX, id: record.id, item: record.item, comment: record.comment,
        description: record.description || '', key: request.newIdempotencyKey() } })
      this.setLinks(record.evidence, 'fix')
    },
    closeFix() { this.setData({ fix: NO_FIX }) },
    onFixDescription(event) { this.setData({ 'fix.description': event.detail.value }) },
    async resubmit() {
      const { fix } = this.data
      if (this.data.busy || !fix.id) return
      if (!fix.description.trim()) {
        wx.showToast({ title: '请填写服务内容', icon: 'none' })
        return
      }
      const body = { description: fix.description.trim(), evidence: fix.links }
      const key = this.keyFor('fix', body)
      this.setData({ busy: true })
      try {
        await request.post(`/records/${fix.id}/resubmit`, body, { idempotencyKey: key, fieldLabels: LABELS })
        this.setData({ fix: NO_FIX })
        wx.showToast({ title: '已重新提交，等待审核', icon: 'none' })
        await this.loadRecords()
      } catch (error) {
        // the request module explains why (invalid_transition: already resubmitted or decided; field errors)
      } finally {
        this.setData({ busy: false })
      }
    },
  },
})
