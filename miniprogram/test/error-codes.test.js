/**
 * Every error code the member-facing use cases can answer has a title and a next step in utils/errors.js.
 * The codes are read from the service's source, so a code added there without guidance fails here.
 */
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { GUIDANCE } = require('../utils/errors')

const REPO = path.resolve(__dirname, '..', '..')
const MEMBER_FACING = [
  'points_service/domain/checkin', 'points_service/domain/activities/signups.py',
  'points_service/domain/idempotency.py', 'points_service/domain/accounts/signin.py',
  'points_service/api/security.py', 'points_service/api/auth.py',
  'points_service/domain/market/errors.py', 'points_service/domain/uploads', 'points_service/domain/images.py',
  'points_service/domain/notifications',
  // sign-in asks WeChat (wechat_user_blocked); the generic errors and the HTTP answers any request may get
  'points_service/integrations/wechat.py', 'points_service/domain/errors.py', 'points_service/api/errors.py',
]
// Raised only on the console's or an organizer's side, never to a member's mini-program.
const NOT_FOR_MEMBERS = new Set(['invalid_credentials', 'login_locked', 'activity_not_editable', 'activity_host_only',
  'capacity_below_signups', 'self_review', 'pickup_code_invalid', 'stock_unlimited', 'stock_negative',
  // the client always sends JSON with the methods the API documents: these would be its own bug
  'method_not_allowed', 'unsupported_media_type'])
const CODE = /(?:code(?:, message)?\s*=\s*(?:\d+,\s*)?|code=)"([a-z_]+)"/g
const HTTP_CODE = /^\s*\d{3}: \("([a-z_]+)"/gm // api/errors.py's HTTP_ERRORS: 500 → internal_error, …

function sourceFiles(entry) {
  const full = path.join(REPO, entry)
  if (fs.statSync(full).isFile()) return [full]
  return fs.readdirSync(full).filter((name) => name.endsWith('.py')).map((name) => path.join(full, name))
}

function codesRaised() {
  const codes = new Set()
  for (const file of MEMBER_FACING.flatMap(sourceFiles)) {
    const source = fs.readFileSync(file, 'utf8')
    for (const match of [...source.matchAll(CODE), ...source.matchAll(HTTP_CODE)]) codes.add(match[1])
  }
  return codes
}

test('the check-in codes the service raises are found in its source', () => {
  const codes = codesRaised()
  for (const code of ['checkin_token_invalid', 'outside_geofence', 'outside_time_window', 'already_checked_in',
    'already_checked_out', 'idempotency_key_reused', 'member_required']) {
    assert.ok(codes.has(code), code)
  }
})

test('the market and photo-upload codes a member can meet are found in the source too', () => {
  const codes = codesRaised()
  for (const code of ['insufficient_points', 'out_of_stock', 'limit_reached', 'monthly_ceiling_reached',
    'item_unavailable', 'item_not_found', 'order_not_open', 'order_not_found', 'picture_invalid', 'member_required']) {
    assert.ok(codes.has(code), code)
  }
})

test('the sign-in refusals from WeChat and the answers any request may get are found in the source too', () => {
  const codes = codesRaised()
  for (const code of ['wechat_user_blocked', 'internal_error', 'service_unavailable', 'conflict']) {
    assert.ok(codes.has(code), code)
  }
})

test('every member-facing error code the service raises has guidance in the client', () => {
  const missing = [...codesRaised()].filter((code) => !NOT_FOR_MEMBERS.has(code) && !GUIDANCE[code])
  assert.deepEqual(missing, [])
})
