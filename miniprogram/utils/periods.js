/** Period keys the API understands, computed in Asia/Shanghai like the server: 2026-11, 2026-Q4, 2026. */
const { shanghaiParts, pad } = require('./format')

function monthKey(now = new Date()) {
  const p = shanghaiParts(now)
  return `${p.year}-${pad(p.month)}`
}

function quarterKey(now = new Date()) {
  const p = shanghaiParts(now)
  return `${p.year}-Q${Math.ceil(p.month / 3)}`
}

function yearKey(now = new Date()) {
  return String(shanghaiParts(now).year)
}

/** The quarter before the current one: selections (业务之星, 流动红旗) are made for closed periods. */
function previousQuarterKey(now = new Date()) {
  const p = shanghaiParts(now)
  const quarter = Math.ceil(p.month / 3)
  return quarter === 1 ? `${p.year - 1}-Q4` : `${p.year}-Q${quarter - 1}`
}

function previousMonthKey(now = new Date()) {
  const p = shanghaiParts(now)
  return p.month === 1 ? `${p.year - 1}-12` : `${p.year}-${pad(p.month - 1)}`
}

/** The closed period before the current one of a kind the policy names: 'month' or 'quarter'. */
function previousKey(kind, now = new Date()) {
  return kind === 'month' ? previousMonthKey(now) : previousQuarterKey(now)
}

/** A month or quarter key moved by `step` of its kind: ('2026-12', 1) → '2027-01', ('2027-Q1', -1) → '2026-Q4'. */
function shiftKey(key, step) {
  const [year, part] = key.split('-')
  const quarterly = part.startsWith('Q')
  const size = quarterly ? 4 : 12
  const index = Number(year) * size + Number(quarterly ? part.slice(1) : part) - 1 + step
  const number = (index % size) + 1
  return `${Math.floor(index / size)}-${quarterly ? 'Q' + number : pad(number)}`
}

/** The leaderboard periods offered to a member, in the order of the tabs. */
function boardPeriods(now = new Date()) {
  return [
    { key: monthKey(now), label: '本月' },
    { key: quarterKey(now), label: '本季度' },
    { key: yearKey(now), label: '本年度' },
    { key: 'standing', label: '活跃指数' },
  ]
}

module.exports = {
  monthKey, quarterKey, yearKey, previousQuarterKey, previousMonthKey, previousKey, shiftKey, boardPeriods,
}
