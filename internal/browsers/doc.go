// Package browsers drives Firefox ESR and WebKitGTK for the end-to-end
// suites, as minimal clients of the protocols each speaks here: WebDriver
// BiDi over a WebSocket (Firefox no longer speaks CDP, and geckodriver is
// not packaged) and classic W3C WebDriver over HTTP (WebKitWebDriver, under
// Xvfb: WebKitGTK has no headless mode). Chromium is driven by chromedp.
// Only what the scenarios need: navigate, evaluate, click, wait, cookies,
// and the pages' errors.
package browsers
