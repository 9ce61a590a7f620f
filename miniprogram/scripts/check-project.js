#!/usr/bin/env node
/**
 * The project's own check (what miniprogram-ci would refuse): app.json parses; every page it lists has
 * .js, .wxml, .wxss and .json; every tab bar page is a listed page; the files that would be uploaded
 * (project.config.json's packOptions.ignore left out) stay under the 2 MB main-package limit; no
 * file that would be uploaded looks like it holds a secret; every page of the page map (docs/miniprogram.md) is
 * listed; every '/pages/…' a packed file navigates to is a listed page; and no template or style loads anything
 * from another host (no CDN: pictures come from the API, everything else is packed).
 */
const fs = require('node:fs')
const path = require('node:path')

const MAIN_PACKAGE_LIMIT = 2 * 1024 * 1024
const PAGE_FILES = ['.js', '.wxml', '.wxss', '.json']
const REQUIRED_PAGES = [
  'pages/home/home', 'pages/activities/activities', 'pages/scan/scan', 'pages/boards/boards', 'pages/mine/mine',
  'pages/login/login', 'pages/report/report', 'pages/ledger/ledger', 'pages/honors/honors', 'pages/market/market',
  'pages/market-item/market-item', 'pages/orders/orders', 'pages/messages/messages',
]
const PAGE_LINK = /['"`]\/(pages\/[a-z-]+\/[a-z-]+)/g
const EXTERNAL_RESOURCE = /(?:src\s*=\s*["']|url\(\s*["']?)(?:https?:)?\/\//i
const SECRET_PATTERNS = [/appsecret/i, /app_secret/i, /session_key\s*[:=]/i, /-----BEGIN [A-Z ]*PRIVATE KEY-----/]

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

function ignoredBy(root) {
  const ignore = (readJson(path.join(root, 'project.config.json')).packOptions || {}).ignore || []
  return (relative) => ignore.some((rule) => (rule.type === 'folder'
    ? relative === rule.value || relative.startsWith(rule.value + '/') : relative === rule.value))
}

function packedFiles(root) {
  const ignored = ignoredBy(root)
  const files = []
  const walk = (folder) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name)
      const relative = path.relative(root, full).split(path.sep).join('/')
      if (entry.name.startsWith('.') || ignored(relative)) continue
      if (entry.isDirectory()) walk(full)
      else files.push({ relative, size: fs.statSync(full).size, full })
    }
  }
  walk(root)
  return files
}

function checkProject(root) {
  const problems = []
  let app
  try {
    app = readJson(path.join(root, 'app.json'))
  } catch (error) {
    return { problems: [`app.json: ${error.message}`], size: 0, files: [] }
  }
  const pages = app.pages || []
  if (!pages.length) problems.push('app.json lists no pages')
  if (new Set(pages).size !== pages.length) problems.push('app.json lists a page twice')
  for (const page of pages) {
    for (const ext of PAGE_FILES) {
      if (!fs.existsSync(path.join(root, page + ext))) problems.push(`page ${page} has no ${ext}`)
    }
    const json = path.join(root, page + '.json')
    if (fs.existsSync(json)) {
      try { readJson(json) } catch (error) { problems.push(`${page}.json: ${error.message}`) }
    }
  }
  for (const page of REQUIRED_PAGES) {
    if (!pages.includes(page)) problems.push(`page ${page} of the page map is not listed in app.json`)
  }
  for (const tab of (app.tabBar && app.tabBar.list) || []) {
    if (!pages.includes(tab.pagePath)) problems.push(`tab ${tab.pagePath} is not a listed page`)
  }
  if (app.sitemapLocation && !fs.existsSync(path.join(root, app.sitemapLocation))) {
    problems.push(`sitemap ${app.sitemapLocation} is missing`)
  }
  const files = packedFiles(root)
  const size = files.reduce((sum, file) => sum + file.size, 0)
  if (size > MAIN_PACKAGE_LIMIT) problems.push(`main package is ${size} bytes, over the ${MAIN_PACKAGE_LIMIT} limit`)
  for (const file of files) {
    const text = fs.readFileSync(file.full, 'utf8')
    if (SECRET_PATTERNS.some((pattern) => pattern.test(text))) problems.push(`${file.relative} looks like it holds a secret`)
    if (/\.(js|wxml)$/.test(file.relative)) {
      for (const [, target] of text.matchAll(PAGE_LINK)) {
        if (!pages.includes(target)) problems.push(`${file.relative} links to ${target}, which is not a listed page`)
      }
    }
    if (/\.(wxml|wxss)$/.test(file.relative) && EXTERNAL_RESOURCE.test(text)) {
      problems.push(`${file.relative} loads a resource from another host`)
    }
  }
  return { problems, size, files: files.map((file) => file.relative) }
}

module.exports = { checkProject, packedFiles, MAIN_PACKAGE_LIMIT, REQUIRED_PAGES }

if (require.main === module) {
  const root = path.resolve(__dirname, '..')
  const { problems, size, files } = checkProject(root)
  console.log(`mini-program: ${files.length} files, ${size} bytes in the main package (limit ${MAIN_PACKAGE_LIMIT})`)
  for (const problem of problems) console.error(`problem: ${problem}`)
  process.exit(problems.length ? 1 : 0)
}
