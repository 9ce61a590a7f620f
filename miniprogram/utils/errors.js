/**
 * What a member reads when something goes wrong. The server's `message` is already a Chinese sentence fit
 * to show; for the codes below the client adds a title and what to do next, because a member standing at
 * an activity needs more than "failed". Codes come from points_service/domain (checkin/scans.py,
 * activities/signups.py, idempotency.py, accounts/signin.py, api/security.py, api/errors.py, market/errors.py,
 * uploads, images.py, errors.py), integrations/wechat.py plus the client's own.
 */
const GUIDANCE = {
  // check-in and check-out (POST /activities/{id}/checkins, POST /checkins/{id}/checkout)
  checkin_token_invalid: { title: '签到码已失效', hint: '现场屏幕上的签到码每 30 秒更新一次，请对准最新的二维码重新扫码。' },
  outside_geofence: { title: '不在活动地点范围内', hint: '请到达活动现场后再扫码；已在现场的，请打开手机定位，到开阔处重试。' },
  outside_time_window: { title: '不在签到时间内', hint: '签到从活动开始前 30 分钟至活动结束；签退从活动开始至活动结束后 30 分钟。' },
  activity_changed: { title: '活动刚刚修改', hint: '活动的时间或地点刚刚改过，请重新扫描组织者出示的签到码。' },
  already_checked_in: { title: '您已签到', hint: '无需重复签到。活动结束时请再次扫码签退，服务时长才会计入积分。' },
  already_checked_out: { title: '您已签退', hint: '本次活动已完成签退，无需再次操作。' },
  activity_not_open: { title: '活动未开放', hint: '该活动尚未发布或已取消，请向活动组织者确认。' },
  invalid_transition: { title: '无法签退', hint: '这条签到已结束或已被审核处理，如有疑问请联系社区。' },
  not_found: { title: '未找到', hint: '活动或签到记录不存在，请确认扫的是本次活动的签到码。' },
  idempotency_in_flight: { title: '正在处理', hint: '上一次提交还在处理中，请稍等几秒再试。' },
  idempotency_key_reused: { title: '请重新操作', hint: '这次提交与上一次不一致，请重新扫码。' },
  member_required: { title: '仅限党员本人', hint: '请用已绑定党员身份的微信操作。' },
  // sign-up and withdraw
  already_signed_up: { title: '已报名', hint: '您已报名该活动，请按时参加。' },
  activity_full: { title: '名额已满', hint: '该活动报名人数已满，可以看看其他活动。' },
  signup_closed: { title: '报名已截止', hint: '活动已开始，不能再报名或取消报名。' },
  activity_cancelled: { title: '活动已取消', hint: '该活动已被组织者取消，不能报名或签到，可以看看其他活动。' },
  not_signed_up: { title: '未报名', hint: '您没有报名该活动，无需取消。' },
  // sign-in and binding
  member_not_found: { title: '未找到党员信息', hint: '请核对姓名和手机号是否与花名册一致，或联系支部书记。' },
  member_already_bound: { title: '已被其他微信绑定', hint: '该党员已绑定其他微信账号，请联系支部书记处理。' },
  already_bound: { title: '已绑定', hint: '当前微信已绑定党员身份。' },
  account_disabled: { title: '账号已停用', hint: '请联系支部书记。' },
  member_deactivated: { title: '党员身份已停用', hint: '您已离职、退休或组织关系转出，如有疑问请联系支部书记。' },
  wechat_unavailable: { title: '微信登录暂不可用', hint: '请稍后重试。' },
  wechat_login_failed: { title: '微信登录失败', hint: '请稍后重试。' },
  wechat_user_blocked: { title: '微信账号受限', hint: '该微信账号已被微信限制登录，请按微信的提示解除限制后重试，或联系支部书记。' },
  binding_required: { title: '请先绑定', hint: '请先用姓名和手机号绑定党员身份。' },
  refresh_token_reused: { title: '登录已失效', hint: '请重新登录。' },
  token_expired: { title: '登录已过期', hint: '请重新登录。' },
  token_invalid: { title: '登录已失效', hint: '请重新登录。' },
  unauthorized: { title: '请先登录', hint: '' },
  forbidden: { title: '无权操作', hint: '' },
  rate_limited: { title: '操作太频繁', hint: '请稍后再试。' },
  database_busy: { title: '系统繁忙', hint: '请稍后重试；如已提交，请先刷新查看结果。' },
  service_unavailable: { title: '服务暂时不可用', hint: '请稍后重试；如已提交，请先刷新查看结果。' },
  internal_error: { title: '服务出错', hint: '请稍后重试；如已提交，请先刷新查看结果。' },
  conflict: { title: '操作未完成', hint: '内容已有变化，请刷新页面后重试。' },
  bad_request: { title: '请求有误', hint: '请返回后重新进入页面再试。' },
  validation_failed: { title: '填写有误', hint: '' },
  // 积分超市 (GET /shop/items, POST /shop/orders, POST /shop/orders/{id}/cancel)
  insufficient_points: { title: '公益积分不足', hint: '参加志愿服务和社区活动可以获得公益积分；余额可在首页查看。' },
  out_of_stock: { title: '库存不足', hint: '该商品已兑完或剩余数量不够，可以减少数量或看看其他商品。' },
  limit_reached: { title: '已达限购数量', hint: '该商品每人每期限购，请到下一个周期再来兑换。' },
  monthly_ceiling_reached: { title: '本月兑换已达上限', hint: '下个月 1 日起可以继续兑换。' },
  item_unavailable: { title: '商品已下架', hint: '该商品已下架或不在兑换时间内，请看看其他商品。' },
  item_not_found: { title: '未找到商品', hint: '该商品不存在或不向您所在的社区提供，请返回刷新列表。' },
  order_not_found: { title: '未找到订单', hint: '请返回“我的兑换”刷新后再试。' },
  order_not_open: { title: '订单已结束', hint: '该订单已取货、取消或过期，不能再取消。' },
  member_inactive: { title: '党员身份已停用', hint: '您已离职、退休或组织关系转出，不能再兑换商品、上报服务、报到或报名，如有疑问请联系支部书记。' },
  order_in_progress: { title: '订单正在处理', hint: '请稍等片刻，到“我的兑换”查看订单是否已生成，不要重复下单。' },
  pickup_code_exhausted: { title: '暂时无法下单', hint: '本次兑换未扣积分，请稍后再试。' },
  // photo evidence (POST /uploads/evidence)
  picture_invalid: { title: '照片无法使用', hint: '请选择 JPEG、PNG 或 WebP 格式、不超过 4 MB 的照片，或重新拍一张。' },
  payload_too_large: { title: '文件过大', hint: '请选择小一些的照片，或用“压缩”方式重新选择。' },
  upload_failed: { title: '照片上传失败', hint: '请检查网络后重试。' },
  // notifications (POST /me/subscriptions, POST /me/messages/{id}/read)
  template_unknown: { title: '暂不能订阅该通知', hint: '该通知类型已调整，请返回后重新进入页面再选择要接收的通知。' },
  message_not_found: { title: '消息不存在', hint: '该消息已不在您的消息列表中，请下拉刷新消息列表。' },
  // the client's own
  network_error: { title: '网络不稳定', hint: '请检查网络后重试。' },
  server_error: { title: '服务暂时不可用', hint: '请稍后再试。' },
  location_denied: { title: '无法获取位置', hint: '签到需要确认您在活动现场。请在设置中允许使用位置信息后重试。' },
  location_failed: { title: '定位失败', hint: '请打开手机的定位服务，到开阔处重试。' },
  not_checkin_code: { title: '不是签到码', hint: '请扫描活动现场屏幕上的签到二维码。' },
  no_local_checkin: { title: '未找到签到记录', hint: '这台手机上没有本次活动的签到记录，请先扫码签到。' },
  photo_upload_unavailable: { title: '暂不能上传照片', hint: '可以先填写文字说明提交，或附上照片的网址链接。' },
  subscribe_unsupported: { title: '暂不能订阅消息', hint: '请将微信升级到最新版本后再试。' },
}

const FALLBACK_MESSAGE = '操作没有成功，请稍后再试'

/** Field errors of a validation_failed answer, one line each, for a dialog. */
function fieldLines(data, labels) {
  const errors = (data && data.errors) || {}
  return Object.keys(errors).map((field) => {
    const label = (labels && labels[field]) || (field === '_schema' ? '' : field)
    const messages = [].concat(errors[field]).join('；')
    return label ? `${label}：${messages}` : messages
  })
}

/**
 * Title and body to show for an ApiError-like {code, message, data}. The server's message is kept as the
 * body's first sentence (it can be more precise, e.g. the distance to the venue).
 */
function describe(error, labels) {
  const guide = GUIDANCE[error.code]
  const lines = fieldLines(error.data, labels)
  const message = error.message || FALLBACK_MESSAGE
  const title = guide ? guide.title : message.length <= 12 ? message : '提示'
  const parts = [message !== title ? message : '', ...lines, guide ? guide.hint : ''].filter(Boolean)
  return { title, content: parts.join('\n') || title }
}

module.exports = { GUIDANCE, FALLBACK_MESSAGE, describe, fieldLines }
