/** Pages that need a bound member send anyone else to the sign-in page. */
const auth = require('./auth')

function requireSignIn() {
  if (auth.isSignedIn()) return true
  wx.reLaunch({ url: '/pages/login/login' })
  return false
}

module.exports = { requireSignIn }
