const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { checkProject, MAIN_PACKAGE_LIMIT } = require('../scripts/check-project')

const ROOT = path.resolve(__dirname, '..')

test('the mini-program project passes its own check: pages complete, tab bar listed, under 2 MB, no secret', () => {
  const { problems, size, files } = checkProject(ROOT)
  assert.deepEqual(problems, [])
  assert.ok(size > 0 && size <= MAIN_PACKAGE_LIMIT)
  assert.ok(files.includes('app.json'))
  assert.ok(!files.some((file) => file.startsWith('node_modules/') || file.startsWith('test/')))
})

test('project.config.json holds the tourist placeholder, not a real appid', () => {
  const project = JSON.parse(fs.readFileSync(path.join(ROOT, 'project.config.json'), 'utf8'))
  assert.equal(project.appid, 'touristappid')
})

function copyProject() {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-check-'))
  for (const name of ['app.json', 'project.config.json', 'sitemap.json']) {
    fs.copyFileSync(path.join(ROOT, name), path.join(folder, name))
  }
  fs.cpSync(path.join(ROOT, 'pages'), path.join(folder, 'pages'), { recursive: true })
  return folder
}

test('the check names a listed page that lacks one of its four files', () => {
  const folder = copyProject()
  fs.rmSync(path.join(folder, 'pages', 'ledger', 'ledger.wxss'))
  assert.deepEqual(checkProject(folder).problems, ['page pages/ledger/ledger has no .wxss'])
})

test('the check refuses a main package over 2 MB', () => {
  const folder = copyProject()
  fs.writeFileSync(path.join(folder, 'big.png'), Buffer.alloc(MAIN_PACKAGE_LIMIT + 1))
  assert.match(checkProject(folder).problems.join(), /over the 2097152 limit/)
})

test('the check refuses a tab that is not a listed page and a file that holds an app secret', () => {
  const folder = copyProject()
  const app = JSON.parse(fs.readFileSync(path.join(folder, 'app.json'), 'utf8'))
  app.tabBar.list.push({ pagePath: 'pages/shop/shop', text: '积分超市' })
  fs.writeFileSync(path.join(folder, 'app.json'), JSON.stringify(app))
  fs.writeFileSync(path.join(folder, 'keys.js'), "module.exports = { appSecret: 'x' }")
  const problems = checkProject(folder).problems.join('\n')
  assert.match(problems, /tab pages\/shop\/shop is not a listed page/)
  assert.match(problems, /keys.js looks like it holds a secret/)
})

test('the check requires the market, orders and messages pages and every page a file navigates to', () => {
  const folder = copyProject()
  const app = JSON.parse(fs.readFileSync(path.join(folder, 'app.json'), 'utf8'))
  app.pages = app.pages.filter((page) => page !== 'pages/orders/orders')
  fs.writeFileSync(path.join(folder, 'app.json'), JSON.stringify(app))
  const problems = checkProject(folder).problems.join('\n')
  assert.match(problems, /page pages\/orders\/orders of the page map is not listed/)
  assert.match(problems, /pages\/mine\/mine.js links to pages\/orders\/orders, which is not a listed page/)
})

test('the check refuses a picture or style loaded from another host (no CDN)', () => {
  const folder = copyProject()
  fs.appendFileSync(path.join(folder, 'pages', 'market', 'market.wxml'), '<image src="https://cdn.example.com/a.png" />')
  fs.appendFileSync(path.join(folder, 'pages', 'orders', 'orders.wxss'), '.x { background: url(//cdn.example.com/b.png) }')
  const problems = checkProject(folder).problems.join('\n')
  assert.match(problems, /market.wxml loads a resource from another host/)
  assert.match(problems, /orders.wxss loads a resource from another host/)
})
