package gateway

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHop are the fields that describe one connection, not the message
// (RFC 9110 section 7.6.1, plus Proxy-Connection, which old clients send,
// and the proxy authentication pair, which is meant for the proxy itself).
// A proxy never forwards them; the fields named in Connection join them.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Proxy-Authorization": true,
	"Proxy-Authenticate":  true,
}

// connectionTokens are the canonical field names listed in Connection values.
func connectionTokens(values []string) map[string]bool {
	if len(values) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				m[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	return m
}

// hasToken reports whether a comma-separated header lists token (any case).
func hasToken(v, token string) bool {
	for f := range strings.SplitSeq(v, ",") { // no slice: forward-auth asks this on every cookie check
		if strings.EqualFold(textproto.TrimString(f), token) {
			return true
		}
	}
	return false
}
