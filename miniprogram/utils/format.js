/** Display helpers: points, times in Asia/Shanghai (UTC+8, no daylight saving), distances. */
const SHANGHAI_OFFSET_MS = 8 * 3600 * 1000

function pad(n) {
  return String(n).padStart(2, '0')
}

/** Calendar parts of an instant as seen in Shanghai. */
function shanghaiParts(instant) {
  const shifted = new Date(new Date(instant).getTime() + SHANGHAI_OFFSET_MS)
  return { year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, day: shifted.getUTCDate(),
    hour: shifted.getUTCHours(), minute: shifted.getUTCMinutes() }
}

/** '2026-11-01T09:30:00+08:00' → '2026-11-01 09:30'; null → ''. */
function dateTime(value) {
  if (!value) return ''
  const p = shanghaiParts(value)
  return `${p.year}-${pad(p.month)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}`
}

function date(value) {
  return value ? dateTime(value).slice(0, 10) : ''
}

/** Points as the API sends them (numbers with at most 2 decimals): 12 → '12', 1.5 → '1.5'. */
function points(value) {
  if (value === null || value === undefined) return '0'
  return String(Math.round(Number(value) * 100) / 100)
}

/** With a sign, for ledger rows: +2, -1.5. */
function signedPoints(value) {
  const n = Number(value)
  return (n > 0 ? '+' : '') + points(n)
}

function distance(metres) {
  if (metres === null || metres === undefined) return ''
  return metres < 1000 ? `${Math.round(metres)} 米` : `${(metres / 1000).toFixed(1)} 公里`
}

module.exports = { shanghaiParts, dateTime, date, points, signedPoints, distance, pad }
