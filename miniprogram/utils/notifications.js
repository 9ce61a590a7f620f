/**
 * Subscribe messages (订阅消息) and the in-app inbox.
 *
 * Consent: WeChat sends a subscribe message only after the member accepted its template in
 * wx.requestSubscribeMessage, which must run in a tap handler. Pages load the templates first
 * (GET /me/subscriptions → {templates: [{key, template_id, title, granted}]}, `granted` = sends still allowed),
 * then at a natural moment — after a self-report or an order — ask in a dialog whose confirm tap calls
 * `requestConsent`; the accepted keys are posted (POST /me/subscriptions {template_keys} → 201 {granted: {key: n}})
 * so the server may send that many messages.
 *
 * Inbox: GET /me/messages?before=&page_size=&unread=true → {items: [{id, event, title, body, created_at, read_at,
 * link}], page, page_size, total, unread}, newest first; `before` (a message id): only older ones, `total` counted
 * from there; POST /me/messages/{id}/read (another member's id: 404 message_not_found).
 * The unread count for badges comes with GET /me as points.unread_messages.
 */
const request = require('./request')
const format = require('./format')

const MAX_TEMPLATES_PER_ASK = 3 // WeChat's limit for one wx.requestSubscribeMessage
// The templates (keys of config/notifications.yaml) each moment asks for: what its dialog promises.
const REPORT_KEYS = ['record_decided'] // 审核结果通知
const ORDER_KEYS = ['order_ready', 'order_closed'] // 待取货提醒, 订单取消通知 (cancelled or expired)
let cached = null

/** The templates the member may subscribe to, cached for the moment of asking. */
async function loadTemplates(options = {}) {
  const data = await request.get('/me/subscriptions', null, { showError: false, ...options })
  cached = (data && data.templates) || []
  return cached
}

function cachedTemplates() {
  return cached || []
}

/** Templates to ask for now: those wanted (by key, when given), not yet granted first, at most three. */
function templatesToAsk(templates, keys) {
  const wanted = templates.filter((t) => t.template_id && (!keys || keys.includes(t.key)))
  return wanted.filter((t) => !t.granted).concat(wanted.filter((t) => t.granted)).slice(0, MAX_TEMPLATES_PER_ASK)
}

function askWechat(tmplIds) {
  return new Promise((resolve) => {
    if (typeof wx.requestSubscribeMessage !== 'function') {
      resolve({ errMsg: 'requestSubscribeMessage:fail unsupported' })
      return
    }
    wx.requestSubscribeMessage({ tmplIds, success: resolve, fail: (failure) => resolve(failure || {}) })
  })
}

/**
 * Call from a tap: asks WeChat for the templates (all cached ones, or those with `keys`), posts the accepted keys
 * and resolves with them ([] when none were accepted, the member declined, or WeChat refused).
 */
async function requestConsent(keys) {
  const asked = templatesToAsk(cachedTemplates(), keys)
  if (!asked.length) return []
  const result = await askWechat(asked.map((t) => t.template_id))
  const accepted = asked.filter((t) => result[t.template_id] === 'accept').map((t) => t.key)
  if (!accepted.length) return []
  const answer = await request.post('/me/subscriptions', { template_keys: accepted }, { showError: false })
  const counts = (answer && answer.granted) || {}
  accepted.forEach((key) => {
    const t = cached.find((c) => c.key === key)
    if (t) t.granted = Number(counts[key]) || (Number(t.granted) || 0) + 1
  })
  return accepted
}

/** Whether there is anything to ask for (the templates loaded and at least one wanted). */
function canOffer(keys) {
  return templatesToAsk(cachedTemplates(), keys).length > 0
}

/** After a success: a dialog offering notifications; its confirm tap asks WeChat. Resolves with accepted keys. */
function offerConsent({ title, content, keys }) {
  if (!canOffer(keys)) return Promise.resolve([])
  return new Promise((resolve) => {
    wx.showModal({ title, content, confirmText: '接收通知', cancelText: '暂不需要',
      success: (answer) => (answer.confirm ? requestConsent(keys).then(resolve, () => resolve([])) : resolve([])),
      fail: () => resolve([]) })
  })
}

/** A message's link as a page path (with or without the leading slash); other links are not followed. */
function pageLink(link) {
  const text = String(link || '').trim()
  return /^\/?pages\/[a-z-]+\/[a-z-]+(\?.*)?$/.test(text) ? '/' + text.replace(/^\//, '') : ''
}

function messageView(message) {
  return { id: message.id, title: message.title, body: message.body || '', at: format.dateTime(message.created_at),
    unread: !message.read_at, link: pageLink(message.link) }
}

/** The newest messages, or with `before` (a message id) those older than it; `unreadOnly`: 未读 only. */
const listMessages = ({ before, unreadOnly = false } = {}, options = {}) =>
  request.get('/me/messages', { before, page_size: 20, unread: unreadOnly ? 'true' : undefined }, options)
const markRead = (id, options = {}) => request.post(`/me/messages/${id}/read`, {}, options)

function resetForTests() {
  cached = null
}

module.exports = {
  MAX_TEMPLATES_PER_ASK, REPORT_KEYS, ORDER_KEYS, loadTemplates, cachedTemplates, templatesToAsk, canOffer, requestConsent, offerConsent,
  messageView,
  pageLink, listMessages, markRead, resetForTests,
}
