const auth = require('../../utils/auth')

Component({
  data: { step: 'signin', busy: false, name: '', phone: '', phoneError: '' },
  methods: {
    onLoad(options) {
      if (options && options.bind) this.setData({ step: 'bind' })
    },
    async signIn() {
      if (this.data.busy) return
      this.setData({ busy: true })
      try {
        const session = await auth.signIn()
        if (session.needs_binding) this.setData({ step: 'bind' })
        else wx.switchTab({ url: '/pages/home/home' })
      } catch (error) {
        // the request module has already shown the message
      } finally {
        this.setData({ busy: false })
      }
    },
    onName(event) { this.setData({ name: event.detail.value }) },
    onPhone(event) { this.setData({ phone: event.detail.value, phoneError: '' }) },
    async bind() {
      if (this.data.busy) return
      if (!this.data.name.trim()) {
        wx.showToast({ title: '请填写姓名', icon: 'none' })
        return
      }
      if (!auth.validPhone(this.data.phone)) {
        this.setData({ phoneError: '请填写 11 位手机号' })
        return
      }
      this.setData({ busy: true })
      try {
        await auth.bind(this.data.name, this.data.phone)
        wx.showToast({ title: '绑定成功', icon: 'success' })
        wx.switchTab({ url: '/pages/home/home' })
      } catch (error) {
        // shown by the request module (member_not_found, member_already_bound, …)
      } finally {
        this.setData({ busy: false })
      }
    },
  },
})
