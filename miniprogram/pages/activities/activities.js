/**
 * Activities in my community, or near me (activities not yet ended, sorted by distance from the phone, within
 * NEAR_METRES). Sign up / withdraw. A cancelled activity is shown as 已取消 with nothing to do. The list API does
 * not say whether I signed up, so this phone remembers the signed-in member's sign-ups (and learns from already_signed_up /
 * not_signed_up answers, and that an activity was cancelled from activity_cancelled).
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const checkin = require('../../utils/checkin')
const remembered = require('../../utils/remembered')

const NEAR_METRES = 5000

/** The signed-in member's sign-ups on this phone (a shared phone shows nobody else's). */
function signups() {
  return remembered.read(remembered.SIGNUPS)
}

function rememberSignup(activityId, signedUp) {
  const all = signups()
  if (signedUp) all[activityId] = true
  else delete all[activityId]
  remembered.write(remembered.SIGNUPS, all)
}

Component({
  data: { tab: 'community', loading: true, rows: [], note: '' },
  methods: {
    onShow() {
      if (guard.requireSignIn()) this.load()
    },
    onPullDownRefresh() {
      this.load().then(() => wx.stopPullDownRefresh())
    },
    switchTab(event) {
      this.setData({ tab: event.currentTarget.dataset.tab })
      return this.load()
    },
    async load() {
      this.setData({ loading: true, note: '' })
      try {
        const rows = this.data.tab === 'near' ? await this.nearRows() : await this.communityRows()
        this.setData({ loading: false, rows })
      } catch (error) {
        this.setData({ loading: false, rows: [], note: error.message || '加载失败' })
      }
    },
    async communityRows() {
      const me = await request.get('/me')
      const community = me.member && me.member.community
      if (!community) return []
      const page = await request.get('/activities',
        { community_id: community.id, from: new Date().toISOString(), page_size: 50 })
      return page.items.map((activity) => views.activityRow(activity, null, signups()))
    },
    async nearRows() {
      let here
      try {
        here = await checkin.locate()
      } catch (error) {
        this.setData({ note: '需要您的位置才能查找附近的活动' })
        return []
      }
      const page = await request.get('/activities', { from: new Date().toISOString(), page_size: 100 })
      return page.items.map((activity) => views.activityRow(activity, here, signups()))
        .filter((row) => row.metres !== null && row.metres <= NEAR_METRES)
        .sort((a, b) => a.metres - b.metres)
    },
    async signUp(event) {
      const id = event.currentTarget.dataset.id
      try {
        await request.post(`/activities/${id}/signups`, {}, { showError: false })
        rememberSignup(id, true)
        wx.showToast({ title: '报名成功', icon: 'success' })
      } catch (error) {
        if (error.code === 'already_signed_up') rememberSignup(id, true)
        request.showError(error)
        if (error.code === 'activity_cancelled') this.markCancelled(id)
      }
      this.markRows()
    },
    withdraw(event) {
      const id = event.currentTarget.dataset.id
      return new Promise((resolve) => {
        wx.showModal({
          title: '取消报名', content: '确定取消报名该活动吗？', confirmText: '取消报名', cancelText: '再想想',
          success: async (answer) => {
            if (answer.confirm) await this.confirmWithdraw(id)
            resolve()
          },
        })
      })
    },
    async confirmWithdraw(id) {
      try {
        await request.del(`/activities/${id}/signups`, { showError: false })
        rememberSignup(id, false)
        wx.showToast({ title: '已取消报名', icon: 'success' })
      } catch (error) {
        if (error.code === 'not_signed_up') rememberSignup(id, false)
        request.showError(error)
        if (error.code === 'activity_cancelled') this.markCancelled(id)
      }
      this.markRows()
    },
    markCancelled(id) {
      this.setData({ rows: this.data.rows.map((row) => (row.id === id ? { ...row, cancelled: true } : row)) })
    },
    markRows() {
      const mine = signups()
      this.setData({ rows: this.data.rows.map((row) => ({ ...row, signedUp: Boolean(mine[row.id]) })) })
    },
  },
})
