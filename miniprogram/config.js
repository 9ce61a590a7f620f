/**
 * API base per environment, chosen by the running version (wx.getAccountInfoSync().miniProgram.envVersion):
 * develop (DevTools / 开发版), trial (体验版), release (正式版). Nothing here is secret: the client holds no
 * key of any kind; the server alone talks to WeChat with the app secret.
 *
 * In develop only, the storage key `dev.apiBase` overrides the base, so DevTools (or a test) can point the
 * client at any running service without editing this file: wx.setStorageSync('dev.apiBase', 'http://127.0.0.1:5078').
 */
const ENVIRONMENTS = {
  develop: { apiBase: 'http://127.0.0.1:5000' },
  trial: { apiBase: 'https://points-trial.example.cn' },
  release: { apiBase: 'https://points.example.cn' },
}
const API_PREFIX = '/api/v1'
const DEV_OVERRIDE_KEY = 'dev.apiBase'

function envVersion() {
  try {
    return wx.getAccountInfoSync().miniProgram.envVersion || 'release'
  } catch (error) {
    return 'release' // an unknown runtime gets the safest choice
  }
}

function apiBase() {
  const env = envVersion()
  const chosen = ENVIRONMENTS[env] || ENVIRONMENTS.release
  if (env === 'develop') {
    const override = wx.getStorageSync(DEV_OVERRIDE_KEY)
    if (override) return String(override).replace(/\/+$/, '')
  }
  return chosen.apiBase
}

/** Where photo evidence is uploaded (wx.uploadFile, field `file`): the API's own POST /uploads/evidence. */
function evidenceUploadUrl() {
  return apiUrl('/uploads/evidence')
}

/** A link the API returns below the host (e.g. a market picture '/api/v1/shop/pictures/…') made absolute. */
function absoluteUrl(link) {
  if (!link) return ''
  return /^https?:\/\//.test(link) ? link : apiBase() + link
}

/** The full URL of an API path such as '/me'. */
function apiUrl(path) {
  return apiBase() + API_PREFIX + path
}

module.exports = { ENVIRONMENTS, API_PREFIX, DEV_OVERRIDE_KEY, envVersion, apiBase, apiUrl, evidenceUploadUrl,
  absoluteUrl }
