/**
 * 积分超市 for the member: the catalogue his community and the regions above offer (GET /shop/items, marked
 * `affordable` and `limit_left`), an item's detail, ordering with an Idempotency-Key (POST /shop/orders; a retry
 * carries the same key, so it is one order), my orders (GET /me/orders?state=) and cancelling before pick-up.
 * The view models below are what the pages render.
 */
const config = require('../config')
const request = require('./request')
const format = require('./format')

const STATES = {
  placed: { label: '待取货', tone: 'open' },
  picked_up: { label: '已取货', tone: 'done' },
  cancelled: { label: '已取消', tone: 'closed' },
  expired: { label: '已过期', tone: 'closed' },
}
const STATE_TABS = [
  { key: 'placed', label: '待取货' }, { key: '', label: '全部' }, { key: 'picked_up', label: '已取货' },
]
const PERIODS = { month: '每月', quarter: '每季度', year: '每年' }
const MAX_QUANTITY_SHOWN = 10

function stockText(stock) {
  if (stock === null || stock === undefined) return '不限量'
  return stock > 0 ? `剩 ${stock} 件` : '已兑完'
}

function limitText(item) {
  if (!item.limit_per_member) return ''
  const left = item.limit_left === null || item.limit_left === undefined ? '' : `，还可兑 ${item.limit_left} 件`
  return `${PERIODS[item.limit_period] || ''}限兑 ${item.limit_per_member} 件${left}`
}

/** Most units one order may take now: stock, the limit left and a sane cap for the stepper. */
function maxQuantity(item) {
  const bounds = [MAX_QUANTITY_SHOWN]
  if (item.stock !== null && item.stock !== undefined) bounds.push(item.stock)
  if (item.limit_left !== null && item.limit_left !== undefined) bounds.push(item.limit_left)
  return Math.max(0, Math.min(...bounds))
}

function itemView(item) {
  const soldOut = item.stock === 0 || item.limit_left === 0
  return {
    id: item.id, name: item.name, description: item.description || '', region: item.region_name || '',
    picture: config.absoluteUrl(item.picture_url), price: format.points(item.price), priceValue: Number(item.price),
    stock: stockText(item.stock), limit: limitText(item), affordable: Boolean(item.affordable) && !soldOut,
    soldOut, maxQuantity: maxQuantity(item),
    note: soldOut ? (item.stock === 0 ? '已兑完' : '已达限兑数量') : item.affordable ? '' : '积分不足',
    until: item.visible_until ? `兑换截止 ${format.date(item.visible_until)}` : '',
  }
}

function orderView(order) {
  const state = STATES[order.state] || { label: order.state, tone: 'closed' }
  return {
    id: order.id, item: order.item_name, quantity: order.quantity, points: format.points(order.points),
    state: order.state, stateLabel: state.label, tone: state.tone, pickupCode: order.pickup_code || '',
    community: order.community_name || '', placedAt: format.dateTime(order.placed_at),
    deadline: format.date(order.pickup_deadline), closedAt: format.dateTime(order.closed_at),
    reason: order.close_reason || '', canCancel: order.state === 'placed',
  }
}

const listItems = (page = 1, options = {}) => request.get('/shop/items', { page, page_size: 50 }, options)
const getItem = (id, options = {}) => request.get(`/shop/items/${id}`, null, options)
const myOrders = (state, page = 1, options = {}) =>
  request.get('/me/orders', { state, page, page_size: 20 }, options)
const cancelOrder = (id, options = {}) => request.post(`/shop/orders/${id}/cancel`, {}, options)

/** POST /shop/orders with the key the page keeps for this order form (retries reuse it: one order). */
function placeOrder(itemId, quantity, idempotencyKey, options = {}) {
  return request.post('/shop/orders', { item_id: itemId, quantity }, { ...options, idempotencyKey })
}

module.exports = {
  STATES, STATE_TABS, itemView, orderView, maxQuantity, stockText, limitText, listItems, getItem, myOrders,
  cancelOrder, placeOrder,
}
