/**
 * Scan to check in / check out.
 *
 * The organizer's screen shows the rotating token as a QR code (or, as a mini-program code, as the
 * `scene` of pages/scan/scan). The token is `base36(activity id).base36(step).signature`, so the client
 * learns the activity from it; the server alone judges the token, the time and the distance. The phone's
 * position (gcj02) is sent with the token and never stored by the server.
 *
 * Check-out needs the check-in's id: this phone keeps it per activity for the signed-in member (utils/remembered.js:
 * another member signing in on the phone neither sees nor uses it) after a check-in, and learns it again
 * from a repeated scan, whose 409 already_checked_in carries it (`data.checkin_id`): an answer lost on a weak
 * network, a reinstalled app or another phone do not strand the member.
 */
const request = require('./request')
const remembered = require('./remembered')
const { ApiError } = request

const TOKEN_PATTERN = /^([0-9a-z]{1,13})\.([0-9a-z]{1,13})\.([a-z2-7]{12})$/
const CHECKINS_KEY = remembered.CHECKINS

/** The token and activity id in a scan result's text, a mini-program code path, or a page `scene`. */
function parseCheckinCode(text) {
  let candidate = String(text || '').trim()
  const scene = /[?&]scene=([^&]+)/.exec(candidate)
  if (scene) candidate = scene[1]
  try { candidate = decodeURIComponent(candidate) } catch (error) { return null }
  const match = TOKEN_PATTERN.exec(candidate)
  if (!match) return null
  return { token: candidate, activityId: parseInt(match[1], 36) }
}

function clientError(code, message) {
  return new ApiError({ code, message })
}

function scan() {
  return new Promise((resolve, reject) => {
    wx.scanCode({
      onlyFromCamera: true,
      scanType: ['qrCode', 'wxCode'],
      success: (result) => {
        const parsed = parseCheckinCode(result.path || result.result)
        if (parsed) resolve(parsed)
        else reject(clientError('not_checkin_code', '这不是活动签到码'))
      },
      fail: (failure) => reject(/cancel/.test((failure && failure.errMsg) || '')
        ? clientError('cancelled', '') : clientError('not_checkin_code', '没有识别到签到码')),
    })
  })
}

function locate() {
  return new Promise((resolve, reject) => {
    wx.getLocation({
      type: 'gcj02',
      isHighAccuracy: true,
      highAccuracyExpireTime: 4000,
      success: (fix) => resolve({ lat: fix.latitude, lng: fix.longitude, accuracy: fix.accuracy }),
      fail: (failure) => reject(/auth|deny|denied/i.test((failure && failure.errMsg) || '')
        ? clientError('location_denied', '没有位置权限') : clientError('location_failed', '定位失败')),
    })
  })
}

/** The signed-in member's check-ins on this phone, by activity id (another member's are not his). */
function rememberedCheckins() {
  return remembered.read(CHECKINS_KEY)
}

function rememberCheckin(activityId, checkin) {
  const all = rememberedCheckins()
  all[String(activityId)] = { checkin_id: checkin.checkin_id, checked_in_at: checkin.checked_in_at }
  remembered.write(CHECKINS_KEY, all)
}

/** The body of a check-in: the token and the fix (accuracy lets the server flag a poor fix for review). */
function scanBody(code, fix, withAccuracy) {
  const body = { token: code.token, lat: fix.lat, lng: fix.lng }
  if (withAccuracy && typeof fix.accuracy === 'number' && fix.accuracy >= 0) body.accuracy = fix.accuracy
  return body
}

/**
 * POST /activities/{id}/checkins with one Idempotency-Key for this scan (retries reuse it). Already checked in:
 * still refused (the page says so), but the check-in's id is remembered so that 签退 works on this phone.
 */
async function checkIn(code, fix, options = {}) {
  let checkin
  try {
    checkin = await request.post(`/activities/${code.activityId}/checkins`, scanBody(code, fix, true),
      { idempotencyKey: options.idempotencyKey || request.newIdempotencyKey(), showError: false })
  } catch (error) {
    const kept = error.code === 'already_checked_in' && error.data && error.data.checkin_id
    if (kept) rememberCheckin(code.activityId, { checkin_id: kept })
    throw error
  }
  rememberCheckin(code.activityId, checkin)
  return checkin
}

/** POST /checkins/{id}/checkout for the check-in this phone made at the code's activity. */
async function checkOut(code, fix, options = {}) {
  const remembered = rememberedCheckins()[String(code.activityId)]
  const checkinId = options.checkinId || (remembered && remembered.checkin_id)
  if (!checkinId) throw clientError('no_local_checkin', '未找到本次活动的签到记录')
  return request.post(`/checkins/${checkinId}/checkout`, scanBody(code, fix, false),
    { idempotencyKey: options.idempotencyKey || request.newIdempotencyKey(), showError: false })
}

/** What the page says after a successful scan. */
function successMessage(action, checkin) {
  if (checkin.status === 'review') {
    return { title: action === 'in' ? '签到成功，待审核' : '签退成功，待审核',
      content: `${checkin.review_reason || '本次签到需社区管理员审核'}。审核通过后计入积分。` }
  }
  if (action === 'in') return { title: '签到成功', content: '活动结束时请再次扫码签退，服务时长将计入积分。' }
  const hours = Number(checkin.hours || 0)
  return { title: '签退成功', content: hours > 0 ? `本次服务 ${hours} 小时，积分已计入。` : '本次服务不足半小时，未计积分。' }
}

module.exports = { parseCheckinCode, scan, locate, checkIn, checkOut, successMessage, rememberedCheckins, CHECKINS_KEY }
