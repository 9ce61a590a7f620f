/** The signed-in state kept in storage: the token pair and whether this WeChat user still has to bind. */
const KEY = 'session'

function read() {
  return wx.getStorageSync(KEY) || null
}

function save(login) {
  const previous = read() || {}
  const session = {
    access_token: login.access_token,
    refresh_token: login.refresh_token,
    needs_binding: 'needs_binding' in login ? Boolean(login.needs_binding) : Boolean(previous.needs_binding),
    member: 'member' in login ? login.member : previous.member || null,
  }
  wx.setStorageSync(KEY, session)
  return session
}

function clear() {
  wx.removeStorageSync(KEY)
}

function accessToken() {
  const session = read()
  return session ? session.access_token : null
}

function refreshToken() {
  const session = read()
  return session ? session.refresh_token : null
}

module.exports = { KEY, read, save, clear, accessToken, refreshToken }
