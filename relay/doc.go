// Package relay owns the browser side of an implicit-grant login: the
// signed state cookie that binds a login to one browser, the relay page
// whose script carries the URL fragment back to the server, the parsing and
// validation of what it posts, the error page, and the rule for where a
// finished login may send the browser.
//
// It must never log, store or echo a token, a state value or a key: its
// errors name what was wrong, never the value.
package relay
