/** Pure view models: API data in, what a page renders out. Kept apart from pages so they are tested alone. */
const format = require('./format')

const KIND_NAMES = { award: '加分', deduction: '扣分', reversal: '冲正', adjustment: '调整', expiry: '过期',
  decay: '衰减', reset: '清零', redemption: '兑换' }
const LEDGER_NAMES = { assessment: '考核积分', redeemable: '公益积分', standing: '活跃指数' }
const STATUS_NAMES = {
  pending: '待审核', approved: '已通过', rejected: '未通过', needs_info: '需补充材料', withdrawn: '已撤回',
}

function rankRows(board) {
  if (!board || !board.on_board) return []
  return (board.ranks || []).map((rank) => ({ scope: rank.scope, label: rank.label, rank: rank.rank }))
}

/** GET /me → the home page. */
function home(me) {
  const points = me.points || {}
  const ranks = me.ranks || {}
  const expiring = points.expiring || { points: 0, on: null }
  return {
    name: (me.member && me.member.name) || (me.user && me.user.display_name) || '',
    community: me.member && me.member.community ? me.member.community.name : '',
    branch: me.member && me.member.branch ? me.member.branch.name : '',
    isMember: Boolean(me.member),
    cards: [
      { key: 'month', label: '本月积分', value: format.points(points.month) },
      { key: 'quarter', label: '本季度积分', value: format.points(points.quarter) },
      { key: 'year', label: '本年度积分', value: format.points(points.year) },
    ],
    standing: format.points(points.standing),
    redeemable: format.points(points.redeemable),
    pending: points.pending || 0,
    openOrders: points.open_orders || 0,
    expiring: { points: format.points(expiring.points), on: format.date(expiring.on), any: Number(expiring.points) > 0 },
    quarterPeriod: ranks.quarter ? ranks.quarter.period : '',
    quarterRanks: rankRows(ranks.quarter),
    standingRanks: rankRows(ranks.standing),
    labels: points.labels || {},
  }
}

/** GET /leaderboards → rows with a flag on my own row, and my place. */
function leaderboard(board, myMemberId) {
  return {
    rows: (board.items || []).map((item) => ({
      rank: item.rank,
      name: item.subject.name,
      organization: item.subject.organization ? item.subject.organization.name : '',
      points: format.points(item.points),
      mine: myMemberId !== null && myMemberId !== undefined && item.subject.id === myMemberId,
      top: item.rank <= 3,
    })),
    total: board.total || 0,
    me: board.me ? { rank: board.me.rank, points: format.points(board.me.points) } : null,
    label: board.label || '',
  }
}

const SCOPE_PREFIX = { grid: 'region', community: 'community', street: 'region', district: 'region',
  branch: 'organization', department: 'organization' }
const SCOPE_ORDER = ['grid', 'community', 'street', 'district', 'branch', 'department']
const PLACE_LABELS = { grid: '网格', community: '社区', branch: '党支部' }

/**
 * The scopes a member can pick on the leaderboard: 全市 and every scope he belongs to. His ranks name them only
 * where he is on a board (nobody is on a new quarter's board on its first day), so his own grid, community and
 * branch come from his profile as well.
 */
function boardScopes(me) {
  const found = {}
  const ranks = (me && me.ranks) || {}
  for (const board of [ranks.quarter, ranks.standing]) {
    for (const rank of (board && board.ranks) || []) {
      if (SCOPE_PREFIX[rank.kind] && !found[rank.kind]) found[rank.kind] = { id: rank.scope_id, label: rank.label }
    }
  }
  const member = (me && me.member) || {}
  for (const kind of Object.keys(PLACE_LABELS)) {
    if (member[kind] && !found[kind]) found[kind] = { id: member[kind].id, label: PLACE_LABELS[kind] }
  }
  return [{ scope: 'all', label: '全市' }].concat(SCOPE_ORDER.filter((kind) => found[kind])
    .map((kind) => ({ scope: `${SCOPE_PREFIX[kind]}:${found[kind].id}`, label: found[kind].label })))
}

/** A ledger entry → a row with its reason. */
function ledgerRow(entry) {
  return {
    id: entry.id,
    item: entry.item_name || entry.item_code,
    points: format.signedPoints(entry.points),
    negative: Number(entry.points) < 0,
    ledger: LEDGER_NAMES[entry.ledger] || entry.ledger,
    kind: KIND_NAMES[entry.kind] || entry.kind,
    reason: entry.reason || '',
    capped: Boolean(entry.capped_by) && Number(entry.points) !== Number(entry.points_requested),
    at: format.dateTime(entry.credited_at),
  }
}

/**
 * An activity → a list row; `here` is the phone's fix (or null) for the distance. A cancelled activity stays
 * listed (the members who signed up learn it here too) and offers nothing to do.
 */
function activityRow(activity, here, signups) {
  const where = activity.location || {}
  const metres = here && typeof where.lat === 'number' ? distanceMetres(here, where) : null
  return {
    id: activity.id,
    title: activity.title,
    community: activity.community ? activity.community.name : '',
    when: `${format.dateTime(activity.starts_at)} 至 ${format.dateTime(activity.ends_at).slice(11)}`,
    startsAt: activity.starts_at,
    distance: metres === null ? '' : format.distance(metres),
    metres,
    capacity: activity.capacity === null || activity.capacity === undefined ? '不限' : `${activity.capacity} 人`,
    signedUp: signedUp(activity, signups),
    started: new Date(activity.starts_at).getTime() <= Date.now(),
    cancelled: activity.status === 'cancelled',
  }
}

/** 已报名: the server's `signed_up`; from an older server without it, what this phone remembers (signups). */
function signedUp(activity, signups) {
  if (typeof activity.signed_up === 'boolean') return activity.signed_up
  return Boolean(signups && signups[activity.id])
}

/** Great-circle distance in metres (the server's formula; gcj02 is locally consistent). */
function distanceMetres(a, b) {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLng = (b.lng - a.lng) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2
  return 2 * 6371008.8 * Math.asin(Math.sqrt(h))
}

/** Policy items a member may report himself: his own awards that a person approves (not check-in, not 报到). */
function reportableItems(policy) {
  return (policy.items || [])
    .filter((item) => item.subject === 'member' && item.kind === 'award' && item.approval !== 'auto'
      && !/^member\.(re)?report$/.test(item.code))
    .map((item) => ({ code: item.code, name: item.name, hours: item.unit === 'hours' }))
}

function recordRow(record) {
  return {
    id: record.id,
    item: record.item_name || record.item_code,
    status: STATUS_NAMES[record.status] || record.status,
    statusKey: record.status,
    at: format.dateTime(record.occurred_at),
    comment: record.decision_comment || '',
    description: record.description,
    evidence: record.evidence || [],
    canResubmit: record.status === 'needs_info', // sent back for more information: 补充材料
  }
}

function starRow(star) {
  return {
    id: star.id,
    name: star.member ? star.member.name : '',
    community: star.community ? star.community.name : '',
    scope: star.scope ? star.scope.name || '' : '',
    points: format.points(star.points),
    status: star.withdrawn ? '已撤销' : star.status === 'final' ? '已确定' : '公示中',
    withdrawn: Boolean(star.withdrawn),
    withdrawnReason: star.withdrawn_reason || '',
    activities: star.activities || 0,
    hours: format.points(star.hours),
  }
}

function redFlagRow(flag) {
  return {
    scope: (flag.scope && flag.scope.name) || '全市',
    holder: flag.organization ? flag.organization.name : '空缺',
    vacant: !flag.organization,
    kind: flag.withdrawn ? '已撤销' : flag.kind_name || '',
    withdrawn: Boolean(flag.withdrawn),
    withdrawnReason: flag.withdrawn_reason || '',
    reason: flag.reason || '',
    score: flag.score === null || flag.score === undefined ? '' : format.points(flag.score),
  }
}

/** GET /policy → the kind of period 流动红旗 are awarded for: 'month' or 'quarter' (the default). */
function redFlagPeriodKind(policy) {
  return policy && policy.red_flag && policy.red_flag.period === 'month' ? 'month' : 'quarter'
}

module.exports = {
  home, leaderboard, boardScopes, ledgerRow, activityRow, distanceMetres, reportableItems, recordRow, starRow,
  redFlagRow, redFlagPeriodKind, STATUS_NAMES,
}
