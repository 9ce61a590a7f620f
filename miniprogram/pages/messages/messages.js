/**
 * 消息通知: what the service told me (审核结果, 兑换, 活动…), newest first, unread ones marked; opening one marks it
 * read and goes to its page when it names one. More on scroll: the messages older than the last one shown.
 */
const guard = require('../../utils/guard')
const notifications = require('../../utils/notifications')
const paging = require('../../utils/paging')

const TAB_PAGES = ['/pages/home/home', '/pages/activities/activities', '/pages/scan/scan', '/pages/boards/boards',
  '/pages/mine/mine']

Component({
  data: { unreadOnly: false, rows: [], page: 0, total: 0, unread: 0, loading: false, done: false, failed: false },
  methods: {
    onShow() {
      if (guard.requireSignIn()) return this.reload()
      return Promise.resolve()
    },
    onPullDownRefresh() {
      return this.reload().then(() => wx.stopPullDownRefresh())
    },
    chooseTab(event) {
      this.setData({ unreadOnly: event.currentTarget.dataset.unread === 'true' })
      return this.reload()
    },
    reload() {
      paging.reset(this)
      return this.more()
    },
    onReachBottom() { return this.more() },
    more() {
      // By key, not page number: reading 未读 messages shrinks that list and new messages grow 全部 meanwhile.
      return paging.loadOlder(this,
        (last) => notifications.listMessages({ before: last && last.id, unreadOnly: this.data.unreadOnly }),
        notifications.messageView, (page) => ({ unread: page.unread || 0 }))
    },
    async open(event) {
      const id = Number(event.currentTarget.dataset.id)
      const index = this.data.rows.findIndex((row) => row.id === id)
      if (index < 0) return
      const row = this.data.rows[index]
      if (row.unread) {
        try {
          await notifications.markRead(id, { showError: false })
          this.setData({ [`rows[${index}].unread`]: false, unread: Math.max(0, this.data.unread - 1) })
        } catch (error) { /* still unread; the list shows it so */ }
      }
      if (/^\/pages\//.test(row.link)) {
        const path = row.link.split('?')[0]
        if (TAB_PAGES.includes(path)) wx.switchTab({ url: path })
        else wx.navigateTo({ url: row.link })
      }
    },
  },
})
