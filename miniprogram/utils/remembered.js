/**
 * What this phone remembers for the signed-in member alone: his sign-ups (`signups`) and his check-ins' ids
 * (`checkins`), per activity. A phone may be shared: each key holds {member_id, items} for one member, the one in
 * the session; another member reads nothing from it, and his first write replaces it. Without a member in the
 * session nothing is remembered. Signing out forgets it all (auth.signOut), so nothing is left for the next member.
 */
const session = require('./session')

const SIGNUPS = 'signups'
const CHECKINS = 'checkins'
const KEYS = [SIGNUPS, CHECKINS]

function owner() {
  const current = session.read()
  const member = current && !current.needs_binding && current.member
  return member && member.id != null ? member.id : null
}

/** The items the signed-in member stored under key ({} for anyone else, or when nobody is signed in). */
function read(key) {
  const stored = wx.getStorageSync(key)
  const id = owner()
  if (id === null || !stored || stored.member_id !== id || !stored.items) return {}
  return stored.items
}

/** Stores the items for the signed-in member, replacing whatever another member left under key. */
function write(key, items) {
  const id = owner()
  if (id === null) wx.removeStorageSync(key)
  else wx.setStorageSync(key, { member_id: id, items })
}

/** Forgets what is kept under every key (sign-out). */
function forget() {
  KEYS.forEach((key) => wx.removeStorageSync(key))
}

module.exports = { SIGNUPS, CHECKINS, read, write, forget }
