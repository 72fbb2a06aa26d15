package authserver

import (
	"net"
	"net/url"
	"strings"
)

// SecureURL reports whether u is an absolute https URL, or http on a
// loopback host (for development): where tokens and keys may be fetched.
func SecureURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || pu.User != nil || pu.Fragment != "" {
		return false
	}
	return pu.Scheme == "https" || pu.Scheme == "http" && IsLoopback(pu.Hostname())
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
