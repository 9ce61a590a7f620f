/**
 * An item of the 积分超市 and ordering it. One Idempotency-Key per order form: a retry on a weak network sends
 * the same key and body, so it is one order; changing the quantity or ordering again takes a new key. After the
 * order the pick-up code is shown large, and the member is offered order notifications (订阅消息).
 */
const request = require('../../utils/request')
const guard = require('../../utils/guard')
const market = require('../../utils/market')
const notifications = require('../../utils/notifications')
const format = require('../../utils/format')

Component({
  data: { id: null, loading: true, failed: false, item: null, quantity: 1, total: '0', busy: false, order: null,
    key: '' },
  methods: {
    onLoad(query) {
      this.setData({ id: Number(query && query.id), key: request.newIdempotencyKey() })
      if (!guard.requireSignIn()) return Promise.resolve()
      notifications.loadTemplates().catch(() => {})
      return this.load()
    },
    async load() {
      try {
        const item = market.itemView(await market.getItem(this.data.id))
        this.setData({ loading: false, failed: false, item, quantity: 1, total: item.price })
      } catch (error) {
        this.setData({ loading: false, failed: true })
      }
    },
    setQuantity(quantity) {
      const item = this.data.item
      const next = Math.max(1, Math.min(quantity, Math.max(1, item.maxQuantity)))
      if (next === this.data.quantity) return
      this.setData({ quantity: next, total: format.points(item.priceValue * next), key: request.newIdempotencyKey() })
    },
    more() { this.setQuantity(this.data.quantity + 1) },
    less() { this.setQuantity(this.data.quantity - 1) },
    preview() {
      if (this.data.item.picture) wx.previewImage({ urls: [this.data.item.picture], current: this.data.item.picture })
    },
    confirmOrder() {
      const { item, quantity, total } = this.data
      if (this.data.busy || !item || !item.affordable) return Promise.resolve()
      return new Promise((resolve) => {
        wx.showModal({ title: '确认兑换', content: `用 ${total} 公益积分兑换“${item.name}”${quantity} 件？`,
          confirmText: '确认兑换', cancelText: '再想想',
          success: (answer) => resolve(answer.confirm ? this.order() : null) })
      })
    },
    async order() {
      this.setData({ busy: true })
      try {
        const placed = await market.placeOrder(this.data.item.id, this.data.quantity, this.data.key)
        this.setData({ order: market.orderView(placed), key: request.newIdempotencyKey() })
        await notifications.offerConsent({ title: '兑换成功', keys: notifications.ORDER_KEYS,
          content: `取货码 ${placed.pickup_code}。需要在订单可取货、即将过期时收到微信通知吗？` })
      } catch (error) {
        if (['out_of_stock', 'item_unavailable', 'limit_reached'].includes(error.code)) await this.load()
      } finally {
        this.setData({ busy: false })
      }
    },
    goOrders() { wx.navigateTo({ url: '/pages/orders/orders' }) },
  },
})
