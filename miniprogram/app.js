const request = require('./utils/request')

App({
  onLaunch() {
    request.setHandlers({
      onSignedOut: () => wx.reLaunch({ url: '/pages/login/login' }),
      onBindingRequired: () => wx.reLaunch({ url: '/pages/login/login?bind=1' }),
    })
  },
})
