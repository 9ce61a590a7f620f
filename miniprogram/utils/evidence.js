/**
 * Photo evidence for self-reports: wx.chooseMedia picks (compressed) photos, wx.uploadFile sends each to the
 * API's POST /uploads/evidence (field `file`, the member's bearer token), whose answer `data.url` goes into the
 * record's `evidence` as it is — the server accepts links to the member's own uploads. Links a member types
 * must be https, as the API requires; at most MAX_EVIDENCE in all.
 */
const config = require('../config')
const session = require('./session')
const { ApiError, refreshSession, endSession } = require('./request')

const MAX_EVIDENCE = 9 // the API's limit (and a WeChat picker's)
const HTTPS_LINK = /^https:\/\/[^\s/]+\.[^\s/]+(\/\S*)?$/

function uploadAvailable() {
  return Boolean(config.evidenceUploadUrl())
}

function isEvidenceLink(text) {
  return HTTPS_LINK.test(String(text || '').trim())
}

/** A link to a photo uploaded through the API (shown as a picture, not as text). */
function isUploadedPhoto(link) {
  return /^https?:\/\/[^\s/]+\/api\/v1\/uploads\/evidence\/[A-Za-z0-9_-]+\.(jpg|png|webp)$/.test(String(link || ''))
}

function choosePhotos(count) {
  return new Promise((resolve, reject) => {
    wx.chooseMedia({
      count: Math.max(1, Math.min(count, 9)),
      mediaType: ['image'],
      sourceType: ['album', 'camera'],
      sizeType: ['compressed'],
      success: (result) => resolve(result.tempFiles.map((file) => file.tempFilePath)),
      fail: () => reject(new ApiError({ code: 'cancelled', message: '' })),
    })
  })
}

function parse(response) {
  try {
    return typeof response.data === 'string' ? JSON.parse(response.data) : response.data
  } catch (error) {
    return null
  }
}

function sendOnce(filePath) {
  return new Promise((resolve, reject) => {
    wx.uploadFile({
      url: config.evidenceUploadUrl(), filePath, name: 'file',
      header: { Authorization: `Bearer ${session.accessToken()}`, Accept: 'application/json' },
      success: (response) => resolve({ status: response.statusCode, body: parse(response) }),
      fail: () => reject(new ApiError({ code: 'network_error', message: '网络不稳定，照片上传失败' })),
    })
  })
}

/**
 * Uploads one photo and resolves with its link; on a 401 the token pair is refreshed once and it is sent again.
 * A 401 the refresh did not cure ends the session, as for any other request (request.js); a refresh that could
 * not reach the server rejects with its network error and keeps the session.
 */
async function uploadPhoto(filePath) {
  if (!uploadAvailable()) throw new ApiError({ code: 'photo_upload_unavailable', message: '暂不能上传照片' })
  let { status, body } = await sendOnce(filePath)
  if (status === 401 && await refreshSession()) ({ status, body } = await sendOnce(filePath))
  const link = body && body.code === 'ok' && body.data && body.data.url
  if (status >= 200 && status < 300 && typeof link === 'string' && /^https?:\/\//.test(link)) return link
  const error = new ApiError({ code: (body && body.code) || 'upload_failed', status, data: body && body.data,
    message: (body && body.message) || '照片上传失败，请重试' })
  if (status === 401) endSession(error)
  throw error
}

module.exports = { MAX_EVIDENCE, uploadAvailable, isEvidenceLink, isUploadedPhoto, choosePhotos, uploadPhoto }
