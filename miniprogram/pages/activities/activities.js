/**
 * Activities in my community (soonest first, more on scroll with utils/paging.js), or near me: the list API has no
 * location filter, so every activity of the city not yet ended is read, NEAR_PAGE_SIZE at a time up to NEAR_MAX_PAGES
 * pages (the page says when the city has more), and those within NEAR_METRES of the phone are sorted by distance.
 * Every page of a list is asked from the same moment (`from`), so pages do not shift as activities end meanwhile.
 * Choosing the other tab while a list loads drops what arrives for the earlier one.
 * Sign up / withdraw. A cancelled activity is shown as 已取消 with nothing to do. 已报名 is the list's `signed_up`
 * (whether I signed up and did not withdraw); an older server without it falls back on the sign-ups this phone
 * remembers for the signed-in member. A sign-up or withdrawal marks its row (also on already_signed_up /
 * not_signed_up answers, and an activity cancelled meanwhile from activity_cancelled).
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const views = require('../../utils/views')
const checkin = require('../../utils/checkin')
const remembered = require('../../utils/remembered')
const paging = require('../../utils/paging')

const NEAR_METRES = 5000
const PAGE_SIZE = 20
const NEAR_PAGE_SIZE = 100 // the API's largest page
const NEAR_MAX_PAGES = 10

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
  data: { tab: 'community', rows: [], page: 0, total: 0, loading: true, done: false, failed: false, note: '',
    truncated: false, nearLimit: NEAR_PAGE_SIZE * NEAR_MAX_PAGES },
  methods: {
    onShow() {
      if (guard.requireSignIn()) this.load()
    },
    onPullDownRefresh() {
      this.load().then(() => wx.stopPullDownRefresh())
    },
    onReachBottom() {
      return this.data.tab === 'community' ? this.more() : Promise.resolve()
    },
    switchTab(event) {
      this.setData({ tab: event.currentTarget.dataset.tab })
      return this.load()
    },
    /** Starts the chosen tab's list afresh; a list still loading for the earlier choice is dropped. */
    load() {
      this.generation = (this.generation || 0) + 1
      this.since = new Date().toISOString()
      this.community = undefined
      paging.reset(this)
      this.setData({ note: '', truncated: false })
      return this.data.tab === 'near' ? this.loadNear(this.generation) : this.more()
    },
    more() {
      return paging.loadMore(this, (number) => this.communityPage(number),
        (activity) => views.activityRow(activity, null, signups()))
    },
    async communityPage(number) {
      if (this.community === undefined) {
        const me = await request.get('/me')
        this.community = (me.member && me.member.community) || null
      }
      if (!this.community) return { items: [], page: 1, total: 0 }
      return request.get('/activities',
        { community_id: this.community.id, from: this.since, page: number, page_size: PAGE_SIZE })
    },
    async loadNear(generation) {
      const current = () => this.generation === generation
      this.setData({ loading: true })
      try {
        let here
        try {
          here = await checkin.locate()
        } catch (error) {
          if (current()) this.setData({ note: '需要您的位置才能查找附近的活动', done: true })
          return
        }
        const { activities, more } = await this.upcomingActivities(current)
        if (!current()) return
        const rows = activities.map((activity) => views.activityRow(activity, here, signups()))
          .filter((row) => row.metres !== null && row.metres <= NEAR_METRES)
          .sort((a, b) => a.metres - b.metres)
        this.setData({ rows, total: rows.length, done: true, truncated: more })
      } catch (error) {
        if (current()) this.setData({ failed: true, done: true }) // the request module has shown why
      } finally {
        if (current()) this.setData({ loading: false })
      }
    },
    /** The city's activities not yet ended, page by page until the list ends or NEAR_MAX_PAGES; `more`: it had not. */
    async upcomingActivities(current) {
      const byId = new Map() // an activity published meanwhile shifts the pages: a row read twice is kept once
      let number = 0
      let total = 0
      do {
        number += 1
        const page = await request.get('/activities', { from: this.since, page: number, page_size: NEAR_PAGE_SIZE })
        if (!current()) return { activities: [], more: false }
        page.items.forEach((activity) => byId.set(activity.id, activity))
        total = page.total
        if (!page.items.length) break
      } while (number * NEAR_PAGE_SIZE < total && number < NEAR_MAX_PAGES)
      return { activities: [...byId.values()], more: number * NEAR_PAGE_SIZE < total }
    },
    async signUp(event) {
      const id = event.currentTarget.dataset.id
      try {
        await request.post(`/activities/${id}/signups`, {}, { showError: false })
        rememberSignup(id, true)
        wx.showToast({ title: '报名成功', icon: 'success' })
      } catch (error) {
        if (error.code !== 'already_signed_up') {
          request.showError(error)
          if (error.code === 'activity_cancelled') this.markCancelled(id)
          return
        }
        rememberSignup(id, true)
        request.showError(error)
      }
      this.markSignedUp(id, true)
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
        if (error.code !== 'not_signed_up') {
          request.showError(error)
          if (error.code === 'activity_cancelled') this.markCancelled(id)
          return
        }
        rememberSignup(id, false)
        request.showError(error)
      }
      this.markSignedUp(id, false)
    },
    markCancelled(id) {
      this.setData({ rows: this.data.rows.map((row) => (row.id === id ? { ...row, cancelled: true } : row)) })
    },
    /** Marks one row only: the others keep what the server said. */
    markSignedUp(id, signedUp) {
      this.setData({ rows: this.data.rows.map((row) => (row.id === id ? { ...row, signedUp } : row)) })
    },
  },
})
