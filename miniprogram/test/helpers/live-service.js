/**
 * Starts the real Flask service for the contract test (scripts/miniprogram_api.py: a temporary SQLite
 * database, the demo city, a fake WeChat code2session) on free loopback ports, waits for its ready line
 * and /healthz, and stops it when the test ends (or the Node process exits). Bounded in time throughout.
 */
const { spawn } = require('node:child_process')
const path = require('node:path')
const readline = require('node:readline')

const REPO = path.resolve(__dirname, '..', '..', '..')
const PYTHON = process.env.POINTS_PYTHON || path.join(REPO, '.venv', 'bin', 'python')
const START_TIMEOUT_MS = Number(process.env.MINIPROGRAM_SERVICE_TIMEOUT_MS || 180000)

function readyLine(child) {
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout })
    let stderr = ''
    child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
    const timer = setTimeout(() => reject(new Error(`service not ready in ${START_TIMEOUT_MS} ms\n${stderr}`)),
      START_TIMEOUT_MS)
    lines.once('line', (line) => { clearTimeout(timer); resolve(JSON.parse(line)) })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`service exited (${code})\n${stderr}`)) })
  })
}

async function waitHealthy(base, ms = 20000) {
  const started = Date.now()
  for (;;) {
    try {
      const response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) })
      if (response.ok) return
    } catch (error) { /* not listening yet */ }
    if (Date.now() - started > ms) throw new Error(`${base}/healthz did not answer in ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function startService() {
  const child = spawn(PYTHON, [path.join(REPO, 'scripts', 'miniprogram_api.py')], {
    cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' },
  })
  const stop = () => {
    if (child.exitCode === null && !child.killed) {
      child.stdin.end()
      child.kill('SIGTERM')
      // a server that ignores SIGTERM is killed outright; the timer does not hold Node open
      setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL') }, 5000).unref()
    }
  }
  process.once('exit', stop)
  try {
    const ready = await readyLine(child)
    await waitHealthy(ready.api)
    return { ...ready, stop }
  } catch (error) {
    stop()
    throw error
  }
}

module.exports = { startService }
