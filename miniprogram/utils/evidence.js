/**
 * Photo evidence for self-reports: wx.chooseMedia picks (compressed) photos, wx.uploadFile sends each to
 * the configured file service (config.evidenceUploadUrl), whose https link goes into the record's
 * `evidence`. The API itself accepts only https links (at most MAX_EVIDENCE), so links typed by the member
 * are checked the same way before sending.
 */
const config = require('../config')
const session = require('./session')
const { ApiError } = require('./request')

const MAX_EVIDENCE = 10
const HTTPS_LINK = /^https:\/\/[^\s/]+\.[^\s/]+(\/\S*)?$/

function uploadAvailable() {
  return Boolean(config.evidenceUploadUrl())
}

function isEvidenceLink(text) {
  return HTTPS_LINK.test(String(text || '').trim())
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

function uploadPhoto(filePath) {
  const url = config.evidenceUploadUrl()
  if (!url) return Promise.reject(new ApiError({ code: 'photo_upload_unavailable', message: '暂不能上传照片' }))
  return new Promise((resolve, reject) => {
    wx.uploadFile({
      url, filePath, name: 'file',
      header: { Authorization: `Bearer ${session.accessToken()}` },
      success: (response) => {
        let body = null
        try { body = JSON.parse(response.data) } catch (error) { body = null }
        const link = body && body.code === 'ok' && body.data && body.data.url
        if (response.statusCode < 300 && isEvidenceLink(link)) resolve(link)
        else reject(new ApiError({ code: 'upload_failed', message: (body && body.message) || '照片上传失败，请重试' }))
      },
      fail: () => reject(new ApiError({ code: 'network_error', message: '网络不稳定，照片上传失败' })),
    })
  })
}

module.exports = { MAX_EVIDENCE, uploadAvailable, isEvidenceLink, choosePhotos, uploadPhoto }
